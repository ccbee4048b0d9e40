"""zstd-compressed JSON payloads and blobs, decompressed with a hard size cap.

``Task.context`` and result data are UTF-8 JSON, zstd-compressed. Decompression streams and
stops at ``max_size`` so a small frame that expands to gigabytes (a "zstd bomb") is refused,
not allocated. Dictionaries (the context engine trains one per workspace) are known by the id
zstd writes into each frame; register one with :func:`register_dictionary`. Between machines a
dictionary travels once, as a snapshot blob named in ``Task.context_dict_blob``.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

import zstandard

from swarm_lsp.errors import CompressionError

DEFAULT_MAX_SIZE = 64 * 1024 * 1024
_CHUNK = 256 * 1024

# The dictionaries registered, least recently used first. Bounded: each costs ~40 KB once
# used (digested, and a context per thread), and a client may upload as many as it likes; one
# that went is registered again from its blob by whoever needs it (admission, the worker).
MAX_DICTIONARIES = 256
MAX_CONTEXTS = 16  # (de)compression contexts a thread keeps
_dictionaries: OrderedDict[int, zstandard.ZstdCompressionDict] = OrderedDict()
_registry = threading.Lock()
# Making a (de)compression context costs ~15 µs, far more than a small payload's work:
# one per thread (they are not thread-safe) and setting, reused.
_contexts = threading.local()


class PayloadTooLargeError(CompressionError):
    """A payload expands past the allowed size."""


def register_dictionary(data: bytes) -> int:
    """Make a trained zstd dictionary known; return the id zstd records in its frames."""
    dictionary = zstandard.ZstdCompressionDict(data)
    dict_id = dictionary.dict_id()
    if dict_id == 0:
        raise CompressionError("not a trained zstd dictionary (it has no dictionary id)")
    with _registry:
        _dictionaries[dict_id] = dictionary
        _dictionaries.move_to_end(dict_id)
        while len(_dictionaries) > MAX_DICTIONARIES:
            _dictionaries.popitem(last=False)
    return int(dict_id)


def known_dictionary(dict_id: int) -> bool:
    return dict_id == 0 or dict_id in _dictionaries


def _dictionary(dict_id: int) -> zstandard.ZstdCompressionDict | None:
    if dict_id == 0:
        return None
    with _registry:
        dictionary = _dictionaries.get(dict_id)
        if dictionary is not None:
            _dictionaries.move_to_end(dict_id)
    if dictionary is None:
        raise CompressionError(f"unknown zstd dictionary id {dict_id}")
    return dictionary


def _cache(name: str) -> dict[Any, Any]:
    cache: dict[Any, Any] | None = getattr(_contexts, name, None)
    if cache is None:
        cache = {}
        setattr(_contexts, name, cache)
    return cache


def _compressor(level: int, dict_id: int) -> zstandard.ZstdCompressor:
    dictionary = _dictionary(dict_id)
    cache = _cache("compressors")
    cached = cache.get((level, dict_id))
    if cached is None or cached[0] is not dictionary:  # new, or a dictionary registered again
        if len(cache) >= MAX_CONTEXTS:
            cache.clear()
        cctx = (
            zstandard.ZstdCompressor(level=level)
            if dictionary is None
            else zstandard.ZstdCompressor(level=level, dict_data=dictionary)
        )
        cached = cache[(level, dict_id)] = (dictionary, cctx)
    return cached[1]  # type: ignore[no-any-return]


def _decompressor(dict_id: int) -> zstandard.ZstdDecompressor:
    dictionary = _dictionary(dict_id)
    cache = _cache("decompressors")
    cached = cache.get(dict_id)
    if cached is None or cached[0] is not dictionary:
        if len(cache) >= MAX_CONTEXTS:
            cache.clear()
        dctx = (
            zstandard.ZstdDecompressor()
            if dictionary is None
            else zstandard.ZstdDecompressor(dict_data=dictionary)
        )
        cached = cache[dict_id] = (dictionary, dctx)
    return cached[1]  # type: ignore[no-any-return]


def compress(data: bytes, *, level: int = 3, dict_id: int = 0) -> bytes:
    return _compressor(level, dict_id).compress(data)


def decompress(data: bytes, *, max_size: int = DEFAULT_MAX_SIZE, dict_id: int = 0) -> bytes:
    """Decompress every frame of ``data``; refuse output past ``max_size`` bytes."""
    if not data:
        raise CompressionError("empty zstd payload")
    try:
        params = zstandard.get_frame_parameters(data)
    except zstandard.ZstdError as err:
        raise CompressionError(f"corrupt zstd payload: {err}") from err
    if params.content_size not in (0, zstandard.CONTENTSIZE_UNKNOWN) and (
        params.content_size > max_size
    ):
        raise PayloadTooLargeError(
            f"payload declares {params.content_size} bytes, more than the {max_size} allowed"
        )
    # The frame names the dictionary it needs; ``dict_id`` is what the sender said it used.
    needed = params.dict_id or dict_id
    if params.content_size != zstandard.CONTENTSIZE_UNKNOWN:
        # One frame that declares its size (within the cap): one call, into a buffer of that
        # size, with this thread's context. zstd checks that the frame decodes to exactly the
        # size declared; anything else takes the path below.
        try:
            return _decompressor(needed).decompress(data, allow_extra_data=False)
        except zstandard.ZstdError:
            pass
    # Streaming keeps a window buffer in the context (up to what the frame asks for): a fresh
    # context, so no thread holds on to a big window a sender chose.
    dictionary = _dictionary(needed)
    dctx = (
        zstandard.ZstdDecompressor()
        if dictionary is None
        else zstandard.ZstdDecompressor(dict_data=dictionary)
    )
    out = bytearray()
    try:
        with dctx.stream_reader(data, read_across_frames=True) as reader:
            while True:
                chunk = reader.read(_CHUNK)
                if not chunk:
                    break
                out += chunk
                if len(out) > max_size:
                    raise PayloadTooLargeError(f"payload expands past the {max_size} bytes allowed")
    except zstandard.ZstdError as err:
        raise CompressionError(f"corrupt zstd payload: {err}") from err
    return bytes(out)


def encode_json(value: Any, *, level: int = 3, dict_id: int = 0) -> bytes:
    """JSON → UTF-8 → zstd."""
    raw = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return compress(raw, level=level, dict_id=dict_id)


def decode_json(data: bytes, *, max_size: int = DEFAULT_MAX_SIZE, dict_id: int = 0) -> Any:
    """zstd → UTF-8 → JSON, with the size cap; corrupt input raises CompressionError."""
    raw = decompress(data, max_size=max_size, dict_id=dict_id)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CompressionError(f"payload is not UTF-8 JSON: {err}") from err


def decode_payload(
    data: bytes, *, max_size: int = DEFAULT_MAX_SIZE, dict_id: int = 0
) -> dict[str, Any]:
    """A task payload: a JSON object (empty context → empty object)."""
    if not data:
        return {}
    value = decode_json(data, max_size=max_size, dict_id=dict_id)
    if not isinstance(value, dict):
        raise CompressionError(f"payload must be a JSON object, got {type(value).__name__}")
    return value


def check_payload(data: bytes, *, max_size: int = DEFAULT_MAX_SIZE, dict_id: int = 0) -> int:
    """What :func:`decode_payload` would refuse, without building the object; its size.

    The payload decompresses within ``max_size`` (the quota), is UTF-8 and has the shape of
    a JSON object (``{`` … ``}``); it is not parsed: the runner that uses it does that.
    """
    if not data:
        return 0
    raw = decompress(data, max_size=max_size, dict_id=dict_id)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CompressionError(f"payload is not UTF-8 JSON: {err}") from err
    body = raw.strip()
    if not (body.startswith(b"{") and body.endswith(b"}")):
        raise CompressionError("payload is not UTF-8 JSON: it must be a JSON object")
    return len(raw)


def dumps(value: Any) -> bytes:
    """Plain UTF-8 JSON (result data is small; it travels uncompressed)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def loads(data: bytes) -> Any:
    if not data:
        return None
    return json.loads(data.decode("utf-8"))
