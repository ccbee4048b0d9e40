"""What a call's credential is looked up by: the per-call paths are cheap and still exact.

A token is found by its sha256 (one dict probe, whatever the table's size); a certificate's
principal is parsed once per exact certificate bytes, in a bounded cache.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from swarm_lsp.dispatch import credentials
from swarm_lsp.dispatch.cli_certs import ensure_ca, make_credential_cert
from swarm_lsp.dispatch.credentials import TokenTable, issue_token, principal_from_pem


def test_a_token_is_found_by_its_exact_bytes_and_a_revoked_one_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tokens.json"
    tokens = {f"w{i}": issue_token(path, name=f"w{i}", kind="worker") for i in range(50)}
    editor = issue_token(path, name="ed", kind="client", roles=["coder"])
    table = TokenTable(path)
    assert table.active()
    for name, token in tokens.items():
        found = table.lookup(token)
        assert found is not None and (found.name, found.kind) == (name, "worker")
        assert table.lookup(token.encode()) == found and table.accepts(token.encode())
    client = table.lookup(editor)
    assert client is not None and client.task_roles == frozenset({"coder"})
    for wrong in ("", editor[:-1], editor + "x", editor.upper(), "w1"):
        assert table.lookup(wrong) is None
        assert not table.accepts(wrong.encode())

    # Re-issuing revokes the old token; the table sees the file change on its next check
    # (at most once a second: the clock is moved on instead of waiting).
    now = [credentials.time.monotonic() + 10.0]
    monkeypatch.setattr(credentials.time, "monotonic", lambda: now[0])
    assert table.lookup(tokens["w7"]) is not None
    fresh = issue_token(path, name="w7", kind="worker")
    now[0] += 2.0
    assert table.lookup(tokens["w7"]) is None
    found = table.lookup(fresh)
    assert found is not None and found.name == "w7"
    path.unlink()
    now[0] += 2.0
    assert table.lookup(fresh) is None and not table.active()


def test_a_certificate_is_parsed_once_per_exact_bytes_in_a_bounded_cache(
    tmp_path: Path,
) -> None:
    ensure_ca(tmp_path)
    worker_pem = make_credential_cert(tmp_path, "w1", "worker", roles=["a"])[0].read_bytes()
    client_pem = make_credential_cert(tmp_path, "ed", "client")[0].read_bytes()
    principal_from_pem.cache_clear()
    worker = principal_from_pem(worker_pem)
    assert (worker.name, worker.kind, worker.task_roles) == ("w1", "worker", frozenset({"a"}))
    assert principal_from_pem(bytes(worker_pem)) == worker
    assert principal_from_pem.cache_info().hits == 1
    # Different bytes are never answered from another certificate's entry.
    client = principal_from_pem(client_pem)
    assert (client.name, client.kind) == ("ed", "client")
    assert principal_from_pem.cache_info().misses == 2
    maxsize = principal_from_pem.cache_info().maxsize
    assert maxsize is not None and maxsize <= 1024
