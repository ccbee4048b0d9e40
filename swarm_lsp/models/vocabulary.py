"""Every token's text for a loaded model, cached in the user cache (built once per model file).

Token healing looks tokens up by their text; asking llama.cpp for 262k pieces takes about 2 s,
so the table is kept as JSON keyed by the model file's name, size and modification time.
"""

from __future__ import annotations

import ctypes
import json
import os
from pathlib import Path
from typing import Any

from swarm_lsp import paths


def pieces(llm: Any, model_path: Path) -> list[str]:
    """The text of every token of ``llm`` (``""`` for byte tokens and special tokens)."""
    cached: Path | None = None
    try:
        st = model_path.stat()
        cached = (
            paths.user_cache_dir()
            / "vocabulary"
            / f"{model_path.stem}-{st.st_size}-{st.st_mtime_ns}.json"
        )
        found = json.loads(cached.read_text(encoding="utf-8"))
        if isinstance(found, list) and len(found) == llm.n_vocab():
            return [str(p) for p in found]
    except (OSError, ValueError):
        pass
    import llama_cpp

    vocab = llm._model.vocab
    size = 256
    buffer = (ctypes.c_char * size)()
    out: list[str] = []
    for token in range(llm.n_vocab()):
        n = llama_cpp.llama_token_to_piece(vocab, token, buffer, size, 0, False)
        # Byte tokens (half a UTF-8 character) never spell an identifier: "" is fine.
        piece = buffer.raw[:n].decode("utf-8", "replace") if 0 < n <= size else ""
        out.append("" if "\ufffd" in piece else piece)
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(out), encoding="utf-8")
            os.replace(tmp, cached)
        except OSError:
            pass
    return out
