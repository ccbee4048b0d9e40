"""A static embedding distilled on this machine from the packaged MiniLM (model2vec's idea).

Every word piece of the model's vocabulary is run through the encoder once, alone
(``[CLS] piece [SEP]``, mean-pooled): that gives one 384-d vector per piece. A text's vector
is then the mean of its pieces' vectors, weighted down for the most common pieces, with no
neural network at run time: thousands of chunks per second on one core. It is far less
precise than the encoder (no context), so it is a candidate measured in BENCHMARKS.md, not
the default. The table lives in ``paths.models_dir()``; nothing is downloaded.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from swarm_lsp import paths

STATIC_VERSION = 1
DISTILL_BATCH = 512


def table_path() -> Path:
    return paths.models_dir() / f"all-MiniLM-L6-v2-static-v{STATIC_VERSION}.npy"


def ensure_table() -> Any:
    """The (vocabulary x 384) float32 table, distilled first if this machine has none."""
    import numpy as np

    target = table_path()
    if not target.exists():
        with paths.exclusive(target.with_suffix(".lock")):
            if not target.exists():
                table = distill()
                tmp = target.with_suffix(".tmp.npy")
                np.save(tmp, table.astype(np.float16))
                tmp.replace(target)
    return np.load(target).astype(np.float32)


def distill() -> Any:
    """One vector per vocabulary piece from the int8 encoder, then frequency weighting."""
    import json

    import numpy as np
    import onnxruntime as ort

    from swarm_lsp.workers.research import embedder, onnx_model

    vocab = json.loads((embedder.model_dir() / "tokenizer.json").read_text())["model"]["vocab"]
    size = max(vocab.values()) + 1
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnx_model.session(onnx_model.ensure_int8_model(), options)
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    table = np.zeros((size, embedder.DIMENSIONS), dtype=np.float32)
    for first in range(0, size, DISTILL_BATCH):
        ids = np.arange(first, min(size, first + DISTILL_BATCH), dtype=np.int64)
        batch = np.stack([np.full_like(ids, cls), ids, np.full_like(ids, sep)], axis=1)
        table[ids] = session.run(None, {"input_ids": batch})[0]  # mean over the 3 pieces
    # Word-piece ids grow roughly with rarity: weigh common pieces down (Zipf, as model2vec).
    weights = np.array([math.log(1 + rank) for rank in range(size)], dtype=np.float32)
    table *= weights[:, None] / weights.max()
    return table
