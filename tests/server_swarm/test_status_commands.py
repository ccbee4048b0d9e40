"""Status, advertised commands, bad arguments."""

from __future__ import annotations

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pytest_lsp import LanguageClient

from tests.server_swarm.conftest import command, ready, wait_for

pytestmark = pytest.mark.slow

COMMANDS = {
    "swarm.ask",
    "swarm.index",
    "swarm.refactor",
    "swarm.explain",
    "swarm.review",
    "swarm.generateTests",
    "swarm.research",
    "swarm.runTests",
    "swarm.status",
    "swarm.cancel",
}


async def test_status_notification_arrives_and_the_command_matches(client: LanguageClient) -> None:
    status = await ready(client)
    assert status["coordinator"].startswith("127.0.0.1:")
    machines = {m["id"]: m for m in status["machines"]}
    assert set(machines) == {"thinker", "tester"}
    assert set(machines["thinker"]["roles"]) == {"refactor", "research"}
    assert machines["tester"]["alive"] is True and machines["tester"]["capacity"] == 2
    assert {"queueDepth", "running", "recent"} <= set(status)

    answer = await command(client, "swarm.status")
    assert answer["state"] == "ready"
    assert {m["id"] for m in answer["machines"]} == {"thinker", "tester"}


async def test_commands_are_advertised(client: LanguageClient) -> None:
    result: types.InitializeResult = client.init_result  # type: ignore[attr-defined]
    caps = result.capabilities
    assert caps.execute_command_provider is not None
    assert isinstance(caps.code_action_provider, types.CodeActionOptions)
    assert set(caps.execute_command_provider.commands) >= COMMANDS
    assert caps.code_action_provider.resolve_provider is True


@pytest.mark.parametrize(
    ("name", "args", "needle"),
    [
        ("swarm.ask", [], "expected arguments [question]"),
        ("swarm.ask", ["  "], "non-empty string"),
        (
            "swarm.refactor",
            ["file:///x.py", {"start": {"line": 0}, "end": {"line": 0, "character": 0}}, "do it"],
            "position",
        ),
        ("swarm.refactor", ["not a uri", {}, "x"], "document URI"),
        ("swarm.explain", ["file:///x.py"], "[uri, range"),
        ("swarm.research", ["file:///x.py", {"line": -1, "character": 0}], ">= 0"),
        ("swarm.status", [1], "expected arguments []"),
    ],
)
async def test_bad_arguments_are_invalid_params(
    client: LanguageClient, name: str, args: list[object], needle: str
) -> None:
    with pytest.raises(JsonRpcInvalidParams) as err:
        await command(client, name, *args)
    assert needle in str(err.value)


async def test_a_new_coordinator_in_the_settings_is_used(client: LanguageClient) -> None:
    await ready(client)
    editor = client.editor  # type: ignore[attr-defined]
    address = (await command(client, "swarm.status"))["coordinator"]
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"swarm": {"coordinator": "127.0.0.1:9"}})
    )
    await wait_for(lambda: editor.statuses[-1]["state"] == "down", 30, "down after switching away")
    editor.statuses.clear()
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"swarm": {"coordinator": address}})
    )
    status = await ready(client)
    assert status["coordinator"] == address
