"""LSP base-protocol framing that no byte stream can kill or deafen.

pygls reads frames with a loop that trusts ``Content-Length``: a huge value allocates the
whole body (MemoryError), a negative, missing or garbled header leaves the loop waiting for a
header it will never recognise. Here every header is checked, a body is read only up to a cap,
and after a bad frame the reader skips forward to the next ``Content-Length:`` header line.

A raw ``Content-Length: <digits>\\r\\n`` never occurs inside a JSON body (JSON strings cannot
hold a raw line break), so skipping to it finds the start of the next real frame.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
HEADER_LINE_LIMIT = 8 * 1024  # one header line; real ones are under 100 bytes
MAX_HEADER_LINES = 32
CHUNK_BYTES = 1024 * 1024

_NEXT_HEADER = re.compile(rb"Content-Length:[ \t]{0,8}\d{1,20}[ \t]{0,8}\r\n", re.IGNORECASE)
_TOKEN = re.compile(rb"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_SCAN_TAIL = 64  # bytes kept between chunks while skipping, so a split header is still found

ReadChunk = Callable[[int], Awaitable[bytes]]


class FrameError(Exception):
    """A frame that could not be read; ``too_large`` tells a size refusal from a bad header."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


@dataclass(frozen=True)
class Frame:
    """One message body, or the reason a frame was skipped."""

    body: bytes = b""
    error: FrameError | None = None


class FrameReader:
    """Frames from a byte stream read in chunks (``read_chunk(n)`` returns b"" at the end)."""

    def __init__(self, read_chunk: ReadChunk, max_message_bytes: int) -> None:
        self._read_chunk = read_chunk
        self.max_message_bytes = max_message_bytes
        self._buf = bytearray()
        self._eof = False
        self._skipping = False
        self.skipped = 0  # bytes of stray data dropped before headers, for the log

    async def _fill(self, want: int = CHUNK_BYTES) -> bool:
        if self._eof:
            return False
        chunk = await self._read_chunk(max(1, min(want, CHUNK_BYTES)))
        if not chunk:
            self._eof = True
            return False
        self._buf += chunk
        return True

    async def _line(self) -> bytes | None:
        """The next line with its ending; b"" at the end; None for a line over the limit."""
        while True:
            end = self._buf.find(b"\n", 0, HEADER_LINE_LIMIT)
            if end >= 0:
                line = bytes(self._buf[: end + 1])
                del self._buf[: end + 1]
                return line
            if len(self._buf) >= HEADER_LINE_LIMIT:
                return None
            if not await self._fill():
                line = bytes(self._buf)
                self._buf.clear()
                return line

    async def _skip_to_next_header(self) -> bool:
        """Drop bytes up to the next ``Content-Length`` header line; False at the end."""
        while True:
            found = _NEXT_HEADER.search(self._buf)
            if found is not None:
                del self._buf[: found.start()]
                return True
            del self._buf[: max(0, len(self._buf) - _SCAN_TAIL)]
            if not await self._fill():
                self._buf.clear()
                return False

    async def _headers(self) -> int | None:
        """The Content-Length of the next frame; None at the end; FrameError when bad."""
        length: int | None = None
        lines = 0
        while True:
            line = await self._line()
            if line is None:
                raise FrameError(f"a header line longer than {HEADER_LINE_LIMIT} bytes")
            if not line:
                if lines:
                    raise FrameError("the stream ended inside a header")
                return None
            text = line.rstrip(b"\r\n")
            if not text.strip():
                if lines == 0:
                    continue  # stray blank lines between frames are harmless
                break
            if lines == 0 and (found := _NEXT_HEADER.search(line)) and found.start() > 0:
                # The rest of a body longer than its Content-Length said, then a real header:
                # the short body has had its answer already; drop the rest and read on.
                self.skipped += found.start()
                self._buf[:0] = line[found.start() :]
                continue
            lines += 1
            try:
                length = self._header_line(text, length, lines)
            except FrameError:
                # Skipping starts inside this line (a header after garbage in it is found) but
                # past its first byte (a refused Content-Length line is not found again).
                self._buf[:0] = line[1:]
                raise
        if length is None:
            raise FrameError("a header without Content-Length")
        return length

    def _header_line(self, text: bytes, length: int | None, lines: int) -> int | None:
        """Check one header line; the Content-Length so far."""
        if lines > MAX_HEADER_LINES:
            raise FrameError(f"more than {MAX_HEADER_LINES} header lines")
        name, colon, value = text.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise FrameError(f"a garbled header line {_show(text)}")
        if name.lower() != b"content-length":
            return length  # Content-Type and unknown headers carry nothing we need
        number = value.strip()
        if not number.isdigit() or not number.isascii():
            raise FrameError(f"Content-Length {_show(number)} is not a non-negative integer")
        too_large = len(number) > 20 or int(number) > self.max_message_bytes
        if too_large:
            size = f"{int(number):,} bytes" if len(number) <= 20 else f"{len(number)} digits"
            raise FrameError(
                f"a message of {size} is over the limit of {self.max_message_bytes:,} bytes "
                "(swarm-lsp serve --max-message-bytes)",
                too_large=True,
            )
        return int(number)

    async def _body(self, length: int) -> bytes | None:
        while len(self._buf) < length:
            if not await self._fill(length - len(self._buf)):
                return None
        body = bytes(self._buf[:length])
        del self._buf[:length]
        return body

    async def next_frame(self) -> Frame | None:
        """The next frame, or None when the stream has ended."""
        if self._skipping:
            self._skipping = False
            if not await self._skip_to_next_header():
                return None
        try:
            length = await self._headers()
        except FrameError as err:
            self._skipping = True
            return Frame(error=err)
        if length is None:
            return None
        body = await self._body(length)
        return None if body is None else Frame(body=body)


def _show(raw: bytes) -> str:
    """A short, printable rendering of untrusted header bytes."""
    text = raw[:40].decode("latin-1")
    return repr(text + ("..." if len(raw) > 40 else ""))
