"""The packaged MiniLM as an int8 ONNX model, made on this machine from the package's weights.

``torch.onnx.export`` writes the fp32 graph of the packaged BERT encoder (inputs ``input_ids``,
``attention_mask``, ``token_type_ids``; output the last hidden state); ONNX Runtime's dynamic
quantization stores its weights as int8, per output channel (cosine 0.99 to the fp32
model where per-tensor int8 gives 0.93; 4x smaller, 2-4x faster on CPU). Nothing is
downloaded. The result lives in ``paths.models_dir()``; ``swarm-lsp index`` and the research
worker make it on first use (about 10 s), ``python -m swarm_lsp.workers.research.onnx_model``
makes it at set-up.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from swarm_lsp import paths
from swarm_lsp.errors import WorkerError

EXPORT_VERSION = 3
OPSET = 17


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


def export(target: Path) -> None:
    """Export the packaged model to fp32 ONNX, quantize it to int8 at ``target``."""
    from swarm_lsp.workers.research import embedder

    try:
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from transformers import AutoModel
    except ImportError as err:
        raise WorkerError(
            f"cannot make the int8 embedding model ({err}); install the research extra "
            "or set SWARM_LSP_EMBEDDER=torch"
        ) from err
    source = embedder.model_dir()
    # Eager attention exports as plain MatMul/Softmax, which ONNX Runtime runs with fewer
    # nodes than the SDPA export (its mask handling alone was a tenth of the time).
    bert = AutoModel.from_pretrained(str(source), attn_implementation="eager")
    bert.eval()

    class Encoder(torch.nn.Module):
        """Keyword arguments in, the last hidden state out (the pooling stays in numpy)."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    model = Encoder()
    ids = torch.ones((2, 16), dtype=torch.int64)
    mask = torch.ones((2, 16), dtype=torch.int64)
    types = torch.zeros((2, 16), dtype=torch.int64)
    axes = {0: "batch", 1: "tokens"}
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        fp32 = Path(work) / "model-fp32.onnx"
        with torch.no_grad():
            torch.onnx.export(
                model,
                (ids, mask, types),
                str(fp32),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["last_hidden_state"],
                dynamic_axes={
                    "input_ids": axes,
                    "attention_mask": axes,
                    "token_type_ids": axes,
                    "last_hidden_state": axes,
                },
                opset_version=OPSET,
                dynamo=False,
            )
        partial = Path(work) / "model-int8.onnx"
        quantize_dynamic(str(fp32), str(partial), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(partial, target)


def main() -> int:
    path = ensure_int8_model()
    print(f"int8 embedding model: {path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
