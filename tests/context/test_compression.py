"""zstd frames: round trips, trained dictionaries, and hostile input refused with clear errors."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import zstandard

from swarm_lsp.context import compression
from swarm_lsp.errors import CompressionError

FIXTURES = Path(__file__).parent / "fixtures"
CAP = 1 << 20


def code_samples() -> list[bytes]:
    """Line-aligned pieces of every fixture source, repeated with small variations."""
    samples: list[bytes] = []
    for path in sorted(FIXTURES.rglob("*")):
        if path.is_file() and path.suffix not in {".toml", ".mod"}:
            data = path.read_bytes()
            for i in range(6):
                samples.extend(
                    compression.sample_chunks(data.replace(b"a", b"a" * (i % 2 + 1)), 512)
                )
    return samples


@pytest.fixture(scope="module")
def dictionary() -> bytes:
    return compression.train_dictionary(code_samples(), dict_size=16 * 1024)


def test_round_trip_without_dictionary() -> None:
    data = b"def f(x):\n    return x\n" * 50
    frame = compression.compress(data)
    params = zstandard.get_frame_parameters(frame)
    assert params.content_size == len(data)  # content size is written
    assert params.dict_id == 0
    assert compression.decompress(frame, CAP) == data


def test_round_trip_with_dictionary(dictionary: bytes) -> None:
    ident = compression.dict_id(dictionary)
    assert ident != 0
    data = (FIXTURES / "tags" / "sample.py").read_bytes()
    frame = compression.compress(data, dictionary)
    assert compression.frame_dict_id(frame) == ident
    assert compression.decompress(frame, CAP, {ident: dictionary}) == data
    assert len(frame) < len(compression.compress(data))


def test_unknown_dictionary_id_is_a_clear_error(dictionary: bytes) -> None:
    frame = compression.compress(b"x = 1\n" * 100, dictionary)
    ident = compression.dict_id(dictionary)
    with pytest.raises(CompressionError, match=f"dictionary id {ident}, which is not known"):
        compression.decompress(frame, CAP, {})
    with pytest.raises(CompressionError, match="not known"):
        compression.decompress(frame, CAP, {ident + 1: dictionary})


def test_bomb_declaring_ten_gigabytes_is_refused_from_its_header() -> None:
    # A hand-made frame header: magic, descriptor (8-byte content size, no single segment),
    # window descriptor, content size = 10 GiB, then one tiny RLE block.
    frame = b"\x28\xb5\x2f\xfd" + bytes([0xC0, 0x00]) + struct.pack("<Q", 10 * 2**30)
    frame += (1 | (1 << 1) | (100 << 3)).to_bytes(3, "little") + b"A"
    assert len(frame) < 32
    with pytest.raises(CompressionError, match=r"declares 10737418240 bytes.*limit; refused"):
        compression.decompress(frame, 64 * 1024 * 1024)


def test_bomb_without_declared_size_stops_at_the_cap() -> None:
    compressor = zstandard.ZstdCompressor(write_content_size=False)
    stream = compressor.compressobj()
    frame = stream.compress(b"\0" * (32 << 20)) + stream.flush()
    assert len(frame) < 4096
    assert zstandard.get_frame_parameters(frame).content_size == zstandard.CONTENTSIZE_UNKNOWN
    with pytest.raises(CompressionError, match="more than the 1048576-byte limit"):
        compression.decompress(frame, CAP)
    # Under a large enough cap the same frame is fine.
    assert len(compression.decompress(frame, 40 << 20)) == 32 << 20


def test_undeclared_size_round_trip() -> None:
    compressor = zstandard.ZstdCompressor(write_content_size=False)
    stream = compressor.compressobj()
    data = b"hello world\n" * 1000
    frame = stream.compress(data) + stream.flush()
    assert compression.decompress(frame, CAP) == data


@pytest.mark.parametrize("cut", [1, 3, 10, 40])
def test_truncated_frames(cut: int) -> None:
    frame = compression.compress(bytes(range(256)) * 40)
    with pytest.raises(CompressionError, match=r"truncated|not a zstd frame"):
        compression.decompress(frame[:-cut] if cut < len(frame) else frame[:1], CAP)


def test_truncated_header() -> None:
    frame = compression.compress(b"abc" * 100)
    with pytest.raises(CompressionError):
        compression.decompress(frame[:5], CAP)


def test_corrupt_and_garbage_input() -> None:
    data = bytes(range(256)) * 40
    frame = bytearray(compression.compress(data))
    frame[len(frame) // 2] ^= 0xFF
    with pytest.raises(CompressionError, match="corrupt"):
        compression.decompress(bytes(frame), CAP)
    with pytest.raises(CompressionError, match="not a zstd frame"):
        compression.decompress(b"this is not zstd at all", CAP)
    with pytest.raises(CompressionError, match="empty input"):
        compression.decompress(b"", CAP)


def test_trailing_bytes_are_refused() -> None:
    frame = compression.compress(b"payload" * 10)
    with pytest.raises(CompressionError, match="unexpected bytes after"):
        compression.decompress(frame + b"junk", CAP)
    with pytest.raises(CompressionError, match="unexpected bytes after"):
        compression.decompress(frame + frame, CAP)


def test_declared_size_over_cap_even_when_small() -> None:
    frame = compression.compress(b"a" * 5000)
    with pytest.raises(CompressionError, match="declares 5000 bytes"):
        compression.decompress(frame, 4999)


def test_training_needs_material() -> None:
    with pytest.raises(CompressionError, match="too little code"):
        compression.train_dictionary([b"x = 1"])


def test_dictionary_store_round_trip(tmp_path: Path, dictionary: bytes) -> None:
    ident = compression.save_dictionary(tmp_path / "dicts", dictionary)
    assert (tmp_path / "dicts" / f"dict-{ident}.zdict").read_bytes() == dictionary
    (tmp_path / "dicts" / "dict-123.zdict").write_bytes(b"mislabelled")
    (tmp_path / "dicts" / "notes.txt").write_text("ignored")
    assert compression.load_dictionaries(tmp_path / "dicts") == {ident: dictionary}
    assert compression.load_dictionaries(tmp_path / "missing") == {}
    with pytest.raises(CompressionError, match="not a zstd dictionary"):
        compression.save_dictionary(tmp_path / "dicts", b"raw content, no magic")


def test_dictionary_helps_small_payloads(dictionary: bytes) -> None:
    payload = (FIXTURES / "tags" / "sample.ts").read_bytes()[:1500]
    with_dict = compression.compress(payload, dictionary)
    without = compression.compress(payload)
    assert len(with_dict) < len(without)


def test_sample_chunks_are_line_aligned() -> None:
    data = b"".join(b"line %d\n" % i for i in range(2000))
    chunks = compression.sample_chunks(data, 1000)
    assert b"".join(chunks) == data
    assert all(chunk.endswith(b"\n") for chunk in chunks)
    assert max(len(c) for c in chunks) <= 1000
