"""zstd frames for context payloads, with a dictionary trained on the workspace's own code.

Small payloads (2 to 8 KB of code) compress poorly on their own; a dictionary of the
workspace's common substrings helps them a lot. Each frame records its content size and the
id of the dictionary it needs, so the receiver can pick the dictionary (sent to it once) and
refuse a frame before allocating anything.

Decompression is bomb-safe: a frame declaring more than ``max_size`` bytes is refused from
its header; a frame that does not declare its size is decompressed in small input steps and
stopped as soon as the output passes the cap. Corrupt, truncated and trailing-garbage input
and unknown dictionary ids raise :class:`CompressionError` with a message saying which.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

import zstandard

from swarm_lsp.errors import CompressionError

DEFAULT_LEVEL = 3
DEFAULT_DICT_SIZE = 112 * 1024  # zstd's own default
#: Smallest input step when decompressing; with _MAX_EXPANSION it bounds the overshoot.
_INPUT_STEP = 128
#: The most output one input byte can produce (a 4-byte RLE block expands to 128 KiB).
_MAX_EXPANSION = 32 * 1024
_MAX_WINDOW = 1 << 27  # zstd's own default limit (128 MiB)
_DICT_FILE = re.compile(r"^dict-(\d+)\.zdict$")

_cache_lock = threading.Lock()
_compressors: dict[tuple[int, int], zstandard.ZstdCompressor] = {}
_dict_objects: dict[int, zstandard.ZstdCompressionDict] = {}


def dict_id(dictionary: bytes) -> int:
    """The id zstd records in frames compressed with ``dictionary`` (0 for raw content)."""
    return _dict_object(dictionary).dict_id()


def _dict_object(dictionary: bytes) -> zstandard.ZstdCompressionDict:
    key = hash(dictionary)
    obj = _dict_objects.get(key)
    if obj is None:
        obj = zstandard.ZstdCompressionDict(dictionary)
        with _cache_lock:
            _dict_objects[key] = obj
    return obj


def _compressor(dictionary: bytes | None, level: int) -> zstandard.ZstdCompressor:
    # ZstdCompressor objects are not thread-safe; cache one per thread and settings.
    key = (threading.get_ident(), hash((dictionary, level)))
    comp = _compressors.get(key)
    if comp is None:
        comp = zstandard.ZstdCompressor(
            level=level,
            dict_data=_dict_object(dictionary) if dictionary else None,
            write_content_size=True,
            write_dict_id=True,
            write_checksum=True,
        )
        with _cache_lock:
            if len(_compressors) > 64:
                _compressors.clear()
            _compressors[key] = comp
    return comp


def compress(data: bytes, dict: bytes | None = None, level: int = DEFAULT_LEVEL) -> bytes:
    """One zstd frame holding ``data``, with content size, dict id and checksum written."""
    try:
        return _compressor(dict, level).compress(data)
    except zstandard.ZstdError as err:
        raise CompressionError(f"zstd compression failed: {err}") from err


def frame_dict_id(data: bytes) -> int:
    """The dictionary id a frame needs (0 when none), or CompressionError if not a frame."""
    return _frame_parameters(data).dict_id


def _frame_parameters(data: bytes) -> zstandard.FrameParameters:
    if not data:
        raise CompressionError("empty input is not a zstd frame")
    try:
        return zstandard.get_frame_parameters(data)
    except zstandard.ZstdError as err:
        raise CompressionError(f"not a zstd frame (corrupt or truncated header): {err}") from err


def decompress(data: bytes, max_size: int, dicts: Mapping[int, bytes] | None = None) -> bytes:
    """Decompress one zstd frame of at most ``max_size`` bytes.

    Raises :class:`CompressionError` when the frame is corrupt or truncated, has trailing
    bytes, needs a dictionary not in ``dicts`` (by id), or declares or produces more than
    ``max_size`` bytes.
    """
    params = _frame_parameters(data)
    declared: int | None = params.content_size
    if declared == zstandard.CONTENTSIZE_UNKNOWN:
        declared = None
    elif declared == zstandard.CONTENTSIZE_ERROR:
        raise CompressionError("corrupt zstd frame header (content size error)")
    if declared is not None and declared > max_size:
        raise CompressionError(
            f"zstd frame declares {declared} bytes, more than the {max_size}-byte limit; refused"
        )
    dictionary = None
    if params.dict_id:
        dictionary_bytes = (dicts or {}).get(params.dict_id)
        if dictionary_bytes is None:
            known = ", ".join(str(k) for k in sorted(dicts or {})) or "none"
            raise CompressionError(
                f"zstd frame needs dictionary id {params.dict_id}, which is not known "
                f"(known ids: {known})"
            )
        dictionary = _dict_object(dictionary_bytes)
    if params.window_size > _MAX_WINDOW:
        raise CompressionError(
            f"zstd frame asks for a {params.window_size}-byte window, over the "
            f"{_MAX_WINDOW}-byte limit; refused"
        )
    try:
        dctx = zstandard.ZstdDecompressor(dict_data=dictionary, max_window_size=_MAX_WINDOW)
        out = _bounded(dctx, data, max_size)
    except zstandard.ZstdError as err:
        raise CompressionError(f"corrupt zstd frame: {err}") from err
    if declared is not None and len(out) != declared:
        raise CompressionError(
            f"zstd frame declares {declared} bytes but holds {len(out)}; corrupt"
        )
    return out


def _bounded(dctx: zstandard.ZstdDecompressor, data: bytes, max_size: int) -> bytes:
    """Decompress one frame, stopping as soon as the output passes ``max_size``.

    Input is fed in steps small enough that one step cannot expand past what is left of the
    budget by more than 4 MiB (zstd's densest block turns 4 bytes into 128 KiB).
    """
    dobj = dctx.decompressobj()
    parts: list[bytes] = []
    total = 0
    position = 0
    while position < len(data) and not dobj.eof:
        step = max(_INPUT_STEP, min(1 << 16, (max_size - total) // _MAX_EXPANSION))
        chunk = dobj.decompress(data[position : position + step])
        position += step
        total += len(chunk)
        if total > max_size:
            raise CompressionError(
                f"zstd frame decompresses to more than the {max_size}-byte limit; refused"
            )
        parts.append(chunk)
    if not dobj.eof:
        raise CompressionError("truncated zstd frame: the input ended before the frame did")
    trailing = len(dobj.unused_data) + max(0, len(data) - position)
    if trailing:
        raise CompressionError(f"{trailing} unexpected bytes after the zstd frame")
    return b"".join(parts)


# -- dictionaries -----------------------------------------------------------------------


def train_dictionary(samples: Iterable[bytes], dict_size: int = DEFAULT_DICT_SIZE) -> bytes:
    """Train a zstd dictionary on ``samples`` (pieces of the workspace's code).

    Raises :class:`CompressionError` when there is too little material to train on.
    """
    pieces: list[bytes | bytearray | memoryview] = [s for s in samples if s]
    total = sum(len(s) for s in pieces)
    if len(pieces) < 8 or total < 4 * 1024:
        raise CompressionError(
            f"too little code to train a dictionary ({len(pieces)} samples, {total} bytes)"
        )
    size = min(dict_size, max(1024, total // 4))
    try:
        trained = zstandard.train_dictionary(size, pieces, level=DEFAULT_LEVEL)
    except zstandard.ZstdError as err:
        raise CompressionError(f"zstd dictionary training failed: {err}") from err
    return trained.as_bytes()


def sample_chunks(data: bytes, size: int = 4096) -> list[bytes]:
    """Split a file into line-aligned pieces of about ``size`` bytes (training samples)."""
    chunks: list[bytes] = []
    start = 0
    while start < len(data):
        end = min(len(data), start + size)
        if end < len(data):
            newline = data.rfind(b"\n", start + size // 2, end)
            if newline > 0:
                end = newline + 1
        chunks.append(data[start:end])
        start = end
    return chunks


def save_dictionary(cache_dir: Path, dictionary: bytes) -> int:
    """Store ``dictionary`` as ``<cache_dir>/dict-<id>.zdict`` (atomically); return its id."""
    ident = dict_id(dictionary)
    if ident == 0:
        raise CompressionError("not a zstd dictionary (no dictionary id)")
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"dict-{ident}.zdict"
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".dict-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(dictionary)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return ident


def load_dictionaries(cache_dir: Path) -> dict[int, bytes]:
    """All stored dictionaries by id; unreadable or mislabelled files are skipped."""
    found: dict[int, bytes] = {}
    if not cache_dir.is_dir():
        return found
    for path in cache_dir.iterdir():
        match = _DICT_FILE.match(path.name)
        if match is None:
            continue
        try:
            data = path.read_bytes()
            if dict_id(data) == int(match.group(1)):
                found[int(match.group(1))] = data
        except (OSError, zstandard.ZstdError):
            continue
    return found
