"""The frame reader on its own: every bad header is reported once and the next frame is read.

The stream is fed in small chunks so that headers and bodies split across reads are covered.
"""

from __future__ import annotations

import pytest

from swarm_lsp.server.framing import HEADER_LINE_LIMIT, Frame, FrameReader


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


GOOD_BODY = b'{"jsonrpc": "2.0", "method": "ok"}'
GOOD = frame(GOOD_BODY)


async def read_all(stream: bytes, chunk: int = 7, limit: int = 1024) -> list[Frame]:
    pos = 0

    async def read_chunk(n: int) -> bytes:
        nonlocal pos
        piece = stream[pos : pos + min(n, chunk)]
        pos += len(piece)
        return piece

    reader = FrameReader(read_chunk, limit)
    frames = []
    while (f := await reader.next_frame()) is not None:
        frames.append(f)
    return frames


def bodies(frames: list[Frame]) -> list[bytes]:
    return [f.body for f in frames if f.error is None]


def errors(frames: list[Frame]) -> list[str]:
    return [str(f.error) for f in frames if f.error is not None]


async def test_good_frames_with_content_type_and_stray_blank_lines() -> None:
    typed = b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n" + GOOD
    frames = await read_all(GOOD + b"\r\n" + typed + GOOD, chunk=3)
    assert errors(frames) == []
    assert len(bodies(frames)) == 3


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        (b"Content-Length: 1000000000000\r\n\r\n{}", "over the limit"),
        (b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n{}", "5000 digits"),
        (b"Content-Length: 2048\r\n\r\n" + b"x" * 2048, "over the limit"),
        (b"Content-Length: -5\r\n\r\n{}", "not a non-negative integer"),
        (b"Content-Length: abc\r\n\r\n{}", "not a non-negative integer"),
        (b"Content-Length: \r\n\r\n{}", "not a non-negative integer"),
        (b"Content-Length: \xd9\xa3\r\n\r\n{}", "not a non-negative integer"),
        (b"Content-Type: text/plain\r\n\r\n{}", "without Content-Length"),
        (b"garbage without colon\r\n\r\n{}", "garbled header"),
        (b"Content Length: 2\r\n\r\n{}", "garbled header"),
        (b"x" * (HEADER_LINE_LIMIT + 10) + b"\r\n\r\n", "longer than"),
    ],
)
async def test_bad_header_is_reported_once_then_next_frame_read(bad: bytes, expected: str) -> None:
    frames = await read_all(GOOD + bad + GOOD)
    assert len(errors(frames)) == 1 and expected in errors(frames)[0]
    assert bodies(frames) == [GOOD_BODY, GOOD_BODY]


async def test_too_large_is_flagged_and_other_errors_are_not() -> None:
    too_large = await read_all(b"Content-Length: 4096\r\n\r\n" + GOOD)
    negative = await read_all(b"Content-Length: -1\r\n\r\n" + GOOD)
    assert [f.error.too_large for f in too_large if f.error] == [True]
    assert [f.error.too_large for f in negative if f.error] == [False]


async def test_body_longer_than_its_length_resyncs_silently() -> None:
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "x"}'
    stream = b"Content-Length: 10\r\n\r\n" + body + GOOD
    reader_frames = await read_all(stream, chunk=5)
    assert errors(reader_frames) == []
    assert bodies(reader_frames) == [body[:10], GOOD_BODY]


async def test_header_after_garbage_in_a_header_block_is_found() -> None:
    stream = b"Content-Type: x\r\nnoise Content-Length: 2\r\n\r\n{}" + GOOD
    frames = await read_all(stream)
    assert len(errors(frames)) == 1
    assert bodies(frames)[0] == b"{}"


async def test_stream_ending_mid_frame_ends_cleanly() -> None:
    assert bodies(await read_all(GOOD + b"Content-Length: 50\r\n\r\n{")) == [GOOD_BODY]
    assert len(errors(await read_all(GOOD + b"Content-Length: 5\r\n"))) == 1
    assert await read_all(b"") == []


async def test_a_huge_body_is_skipped_chunk_by_chunk() -> None:
    big = b"Content-Length: 99999999\r\n\r\n" + b"y" * 3_000_000 + GOOD
    reader_frames = await read_all(big, chunk=1 << 20, limit=1 << 20)
    assert len(errors(reader_frames)) == 1 and len(bodies(reader_frames)) == 1
