"""gRPC's C-core log lines: out of the user's terminal; failed TLS handshakes as one line each.

gRPC's C-core writes its own log lines (``E1201 15:26:40.5 123 file.cc:42] …``) straight to
file descriptor 2, configured only by environment variables read when ``grpc`` is imported.
Every ``swarm-lsp`` command sets ``GRPC_VERBOSITY=NONE`` before that (unless the user chose a
verbosity), so clients and workers print none of them.

The coordinator needs one thing from them: a TLS handshake that fails on its side is never
shown to Python, and only the C-core knows which peer it was and why. So the coordinator
turns on the handshaker trace, points descriptor 2 at a pipe, and a thread reads it: a
failed handshake becomes one log line naming the peer and the cause in words; every other
C-core line is dropped (or logged at DEBUG); anything else written to descriptor 2 (a child
process, a crash) passes through unchanged.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
import os
import re
import sys
import threading
from collections.abc import Callable

from swarm_lsp.dispatch.quiet_log import QuietLog, held_note

log = logging.getLogger("swarm_lsp.dispatch.tls")

OURS = "SWARM_LSP_GRPC_LOG"
_F_SETPIPE_SZ = getattr(
    fcntl, "F_SETPIPE_SZ", 1031
)  # set when GRPC_VERBOSITY is our choice, not the user's

_CORE_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ [\w./-]+:\d+\] ")
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog()"
_CONTINUATION = re.compile(r"^(===|\s|[\w./-]+:\d+\s*$|\s*$)")
_PEER = re.compile(r"endpoint_peer_address=([^,}\s]+)")
_FAILED = "CallNextHandshakerLocked: error="

_UNKNOWN_CA = "the client's certificate is signed by a CA we do not trust (another CA)"
_CLIENT_REFUSES = (
    "the client ended the handshake: it does not accept our certificate (signed by a CA it "
    "does not trust, or not for the name it dialled)"
)
# (substring of the C-core's error, what it means), first match wins.
_SERVER_SIDE_CAUSES = (
    ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "the client sent no certificate (TLS not set up on it)"),
    ("WRONG_VERSION_NUMBER", "the client does not speak TLS (a plaintext client)"),
    ("HTTP_REQUEST", "the client does not speak TLS (a plaintext client)"),
    ("certificate has expired", "the client's certificate has expired"),
    ("not yet valid", "the client's certificate is not valid yet (check both clocks)"),
    ("certificate signature failure", _UNKNOWN_CA),
    ("unable to get local issuer", _UNKNOWN_CA),
    ("unable to get issuer", _UNKNOWN_CA),
    ("self signed certificate", "the client's certificate is self-signed, not from our CA"),
    ("ALERT_UNKNOWN_CA", "the client does not trust the CA that signed our certificate"),
    ("ALERT_CERTIFICATE_EXPIRED", "the client says our certificate has expired"),
    ("ALERT_BAD_CERTIFICATE", "the client refused our certificate"),
    ("ALERT_HANDSHAKE_FAILURE", "the client ended the handshake"),
    ("Invalid certificate verification context", _CLIENT_REFUSES),
    ("Socket closed", _CLIENT_REFUSES),
)


def server_side_cause(error: str) -> str:
    """What a C-core handshake error, seen by a server, means for a person."""
    for needle, meaning in _SERVER_SIDE_CAUSES:
        if needle.lower() in error.lower():
            return meaning
    return error.strip()


def prepare(command: str) -> bool:
    """Set gRPC's logging before ``grpc`` is imported; True when ``command`` should capture.

    A verbosity the user set is left alone (and nothing is captured).
    """
    env = os.environ
    if "GRPC_VERBOSITY" in env and env.get(OURS) != "1":
        return False
    if "grpc" in sys.modules:  # too late to change anything
        return False
    env[OURS] = "1"
    if command == "coordinator":
        env["GRPC_VERBOSITY"] = "DEBUG"
        env["GRPC_TRACE"] = "handshaker"
        return True
    env["GRPC_VERBOSITY"] = "NONE"
    env.pop("GRPC_TRACE", None)
    return False


class CoreLogFilter:
    """Reads C-core output line by line; reports failed handshakes with their peer."""

    def __init__(self, on_handshake_failure: Callable[[str, str], None]) -> None:
        self.on_handshake_failure = on_handshake_failure
        self._in_core_message = False
        self._pending: str | None = None  # the error of a failed handshake, peer not seen yet

    def feed(self, line: str) -> bool:
        """Handle one line; False when it is not gRPC's and should pass through."""
        if _CORE_LINE.match(line):
            self._in_core_message = True
            body = line[_CORE_LINE.match(line).end() :]  # type: ignore[union-attr]
            if _FAILED in body:
                error = body.split(_FAILED, 1)[1]
                if not error.startswith("OK"):
                    self._pending = error.split(" shutdown=", 1)[0].removesuffix(": OK\n")
            elif line[0] in "EF" and "handshake" not in body.lower():
                log.debug("grpc: %s", body.strip())
            self._report(line)
            return True
        if line.startswith(_ABSL_PREAMBLE):
            return True
        if self._in_core_message and _CONTINUATION.match(line):
            self._report(line)
            return True
        self._in_core_message = False
        return False

    def _report(self, line: str) -> None:
        if self._pending is None:
            return
        match = _PEER.search(line)
        if match:
            error, self._pending = self._pending, None
            self.on_handshake_failure(match.group(1), error.strip().removesuffix(": OK"))


class HandshakeLog:
    """One line per failed handshake; the same host failing the same way is summed up."""

    def __init__(self, quiet_s: float = 10.0) -> None:
        self._quiet = QuietLog(quiet_s)

    def __call__(self, peer: str, error: str) -> None:
        from swarm_lsp.dispatch.security import peer_label

        label = peer_label(peer)
        cause = server_side_cause(error)
        held = self._quiet.due((label.rsplit(":", 1)[0], cause))
        if held is not None:
            log.warning("TLS handshake with client %s failed: %s%s", label, cause, held_note(held))


def capture(on_handshake_failure: Callable[[str, str], None] | None = None) -> None:
    """Send descriptor 2 through a CoreLogFilter; Python's own stderr keeps the terminal."""
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    with contextlib.suppress(OSError):  # room for bursts (many failed handshakes at once)
        fcntl.fcntl(write_end, _F_SETPIPE_SZ, 1 << 20)
    os.dup2(write_end, 2)
    os.close(write_end)
    sys.stderr = io.TextIOWrapper(
        os.fdopen(saved, "wb", buffering=0), line_buffering=True, errors="backslashreplace"
    )
    filt = CoreLogFilter(on_handshake_failure or HandshakeLog())
    thread = threading.Thread(
        target=_pump, args=(read_end, saved, filt), name="grpc-core-log", daemon=True
    )
    thread.start()
    import grpc  # noqa: F401  (reads GRPC_VERBOSITY/GRPC_TRACE now, into the pipe)

    # Processes this one starts choose their own (none of them inherit the trace).
    os.environ["GRPC_VERBOSITY"] = "NONE"
    os.environ.pop("GRPC_TRACE", None)


def _pump(read_end: int, out: int, filt: CoreLogFilter) -> None:
    with os.fdopen(read_end, "rb") as pipe:
        for raw in pipe:
            try:
                if not filt.feed(raw.decode("utf-8", errors="replace")):
                    os.write(out, raw)
            except Exception:  # the pump must never stop: C-core would block on a full pipe
                continue
