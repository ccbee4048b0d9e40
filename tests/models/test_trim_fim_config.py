"""Completion trimming, FIM detection and settings parsing: plain functions."""

from __future__ import annotations

from swarm_lsp import config
from swarm_lsp.models import fim
from swarm_lsp.models.trim import trim_completion


def test_mid_statement_finishes_the_line_only() -> None:
    assert trim_completion("a + b\n    print(x)\n", "    return ", "\n", max_lines=5) == "a + b"


def test_block_opener_allows_lines_until_dedent() -> None:
    text = "\n        return 1\n    return 2\nprint('out')\n"
    out = trim_completion(text, "    if x:", "\n", max_lines=10)
    assert out == "\n        return 1\n    return 2"


def test_max_lines_and_suffix_overlap() -> None:
    text = "\n".join(f"line{i}" for i in range(10))
    assert trim_completion(text, "", "", max_lines=3).count("\n") == 2
    assert trim_completion("value)", "call(", ")", max_lines=3) == "value"


def test_fim_detection_uses_the_vocabulary() -> None:
    vocab = {"<fim_prefix>", "<fim_suffix>", "<fim_middle>"}
    family = fim.detect(lambda token: token in vocab)
    assert family is not None and family.prefix == "<fim_prefix>"
    assert family.prompt("P", "a", "b") == "<fim_prefix>Pa<fim_suffix>b<fim_middle>"
    assert fim.detect(lambda token: False) is None


def test_settings_camel_and_snake_case_and_problems() -> None:
    s = config.merge(
        config.Settings(), {"models": {"completionMaxTokens": "12", "chat_max_tokens": 5}}
    )
    assert s.models.completion_max_tokens == 12 and s.models.chat_max_tokens == 5
    s = config.merge(
        config.Settings(), {"models": {"nCtx": -1}, "bogus": {}, "swarm": {"allowedHosts": "a, b"}}
    )
    assert s.models.n_ctx == 2048
    assert s.swarm.allowed_hosts == ("a", "b")
    assert len(s.problems) == 2
    wire = config.to_wire(s)
    assert wire["models"]["completionMaxTokens"] == 48


def test_environment_overrides() -> None:
    s = config.from_environment(config.Settings(), {"SWARM_LSP_MODELS__CHAT_MAX_TOKENS": "17"})
    assert s.models.chat_max_tokens == 17
