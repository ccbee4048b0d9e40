"""The workspace's zstd dictionaries: stored under the cache folder, one marked current,
trained on real task payloads of the workspace."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from swarm_lsp.context import compression
from swarm_lsp.context.files import WorkspaceFiles
from swarm_lsp.context.index import CancelCheck, SymbolIndex

DICT_DIR = "dictionaries"
_CURRENT_DICT = "current"
#: Below this much indexed code a dictionary learns little the frames do not already say.
MIN_TRAIN_CODE_BYTES = 64 * 1024
TRAIN_PAYLOADS = 96
TRAIN_SECONDS = 30.0

#: A task payload for (file relative path, cursor line, token budget).
PayloadMaker = Callable[[str, int, int], str]


class Dictionaries:
    """Every stored dictionary of a workspace, and the id new frames use."""

    def __init__(self, cache_dir: Path) -> None:
        self.directory = cache_dir / DICT_DIR
        self._lock = threading.Lock()
        self._by_id = compression.load_dictionaries(self.directory)
        self.current_id = self._read_current()

    @property
    def current(self) -> bytes | None:
        return None if self.current_id is None else self._by_id.get(self.current_id)

    def all(self) -> dict[int, bytes]:
        return dict(self._by_id)

    def add(self, data: bytes) -> int:
        """Store ``data`` as the current dictionary; return its id."""
        with self._lock:
            ident = compression.save_dictionary(self.directory, data)
            (self.directory / _CURRENT_DICT).write_text(str(ident), encoding="ascii")
            self._by_id[ident] = data
            self.current_id = ident
        return ident

    def compress(self, data: bytes) -> tuple[bytes, int | None]:
        """zstd-compress ``data`` with the current dictionary (if any), and its id."""
        dictionary = self.current
        return compression.compress(data, dictionary), self.current_id if dictionary else None

    def decompress(self, data: bytes, max_bytes: int) -> bytes:
        return compression.decompress(data, max_bytes, self._by_id)

    def _read_current(self) -> int | None:
        try:
            ident = int((self.directory / _CURRENT_DICT).read_text("ascii").strip())
        except (OSError, ValueError):
            return None
        return ident if ident in self._by_id else None


def training_samples(
    files: WorkspaceFiles,
    chosen: Sequence[str],
    payload: PayloadMaker,
    payloads: int = TRAIN_PAYLOADS,
    seconds: float = TRAIN_SECONDS,
    should_cancel: CancelCheck | None = None,
) -> list[bytes]:
    """Task payloads for random cursors in random files of ``chosen``, with budgets spread
    over the 2 to 8 KB range; stops after ``payloads`` samples or ``seconds``. A tiny
    workspace adds chunks of its code."""
    rng = random.Random(0)
    samples: list[bytes] = []
    if not chosen:
        return samples
    cancel = should_cancel or (lambda: False)
    deadline = time.monotonic() + seconds
    attempts = 0
    while len(samples) < payloads and attempts < payloads * 3 and not cancel():
        if time.monotonic() > deadline:
            break
        attempts += 1
        rel = rng.choice(chosen)
        text = files.text(rel)
        if not text:
            continue
        line = rng.randrange(text.count("\n") + 1)
        samples.append(payload(rel, line, rng.randint(500, 2500)).encode("utf-8", "surrogatepass"))
    if sum(len(s) for s in samples) < 256 * 1024:
        for rel in chosen:
            data = files.read_bytes(files.index.absolute(rel))
            if data is not None:
                samples.extend(compression.sample_chunks(data))
            if sum(len(s) for s in samples) >= 512 * 1024:
                break
    return samples


def code_bytes_at_least(index: SymbolIndex, threshold: int) -> bool:
    """Whether the indexed files hold at least ``threshold`` bytes on disk."""
    total = 0
    for rel in index.files():
        with contextlib.suppress(OSError):
            total += index.absolute(rel).stat().st_size
        if total >= threshold:
            return True
    return False
