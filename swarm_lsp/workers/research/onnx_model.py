"""The packaged MiniLM as an int8 ONNX model, made on this machine from the package's weights.

:mod:`.onnx_graph` writes the packaged encoder's fp32 graph (input ``input_ids``, output the
mean-pooled last hidden state); ONNX Runtime's dynamic quantization stores its weights as int8,
per output channel (cosine 0.99 to the fp32 model where per-tensor int8 gives 0.93; 4x smaller,
2-4x faster on CPU). Version 4 is that lean graph (v3 was ``torch.onnx.export``'s, with a mask,
token types and shape arithmetic: 1.3x more CPU per chunk); version 5 runs attention as one
fused node (6% less CPU per chunk than v4). Nothing is
downloaded. The result lives in ``paths.models_dir()``; ``swarm-lsp index`` and the research
worker make it on first use (about 10 s), ``python -m swarm_lsp.workers.research.onnx_model``
makes it at set-up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from swarm_lsp import paths
from swarm_lsp.errors import WorkerError

EXPORT_VERSION = 5


def int8_model_path() -> Path:
    return paths.models_dir() / f"all-MiniLM-L6-v2-int8-v{EXPORT_VERSION}.onnx"


def ensure_int8_model() -> Path:
    """The int8 model's path, exporting it first if this machine has none yet."""
    target = int8_model_path()
    if target.exists():
        return target
    with paths.exclusive(target.with_suffix(".lock")):
        if not target.exists():  # another process may have made it meanwhile
            export(target)
    return target


def session(path: Path, options: Any) -> Any:
    """An ONNX Runtime session of the int8 model on the CPU.

    Without the ``SkipLayerNormalization`` fusion: ONNX Runtime's fused residual + layer norm
    kernel took 12-20% of a run here, the plain ``Add`` and ``LayerNormalization`` it replaces
    about 3%.
    """
    import onnxruntime as ort

    return ort.InferenceSession(
        str(path),
        options,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=["SkipLayerNormFusion"],
    )


def export(target: Path) -> None:
    """Write the lean fp32 graph of the packaged model (:mod:`.onnx_graph`), quantize it to
    int8 at ``target``."""
    from swarm_lsp.workers.research import embedder, onnx_graph

    try:
        import onnx
        import onnxruntime.quantization  # noqa: F401 - checked here, used by _quantize
    except ImportError as err:
        raise WorkerError(
            f"cannot make the int8 embedding model ({err}); install the research extra "
            "or set SWARM_LSP_EMBEDDER=torch"
        ) from err
    model = onnx_graph.build(embedder.model_dir())
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        fp32 = Path(work) / "model-fp32.onnx"
        onnx.save(model, str(fp32))
        partial = Path(work) / "model-int8.onnx"
        with _quiet_root_logger():  # the quantizer's notes on contrib ops
            _quantize(fp32, partial)
        os.replace(partial, target)


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """Drop the records below ERROR that this thread logs straight on the root logger (the
    quantizer's ``logging.warning(...)`` calls); other threads' records and the root logger's
    level are left alone."""
    thread = threading.get_ident()

    def keep(record: logging.LogRecord) -> bool:
        return record.thread != thread or record.levelno >= logging.ERROR

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def _quantize(fp32: Path, partial: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(fp32),
        str(partial),
        weight_type=QuantType.QInt8,
        per_channel=True,
        # The weight products and the word table; attention's products stay fp32.
        op_types_to_quantize=["MatMul", "Gather"],
        # The contrib ops (FusedMatMul, Gelu) have no shape inference in the quantizer.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def main() -> int:
    path = ensure_int8_model()
    print(f"int8 embedding model: {path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
