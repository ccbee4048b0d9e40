"""A small seccomp filter for sandboxed commands, handed to bubblewrap (``--seccomp FD``).

It refuses what a test run never needs and what widens the kernel a hostile one can reach:

- new user namespaces (``unshare``/``clone`` with ``CLONE_NEWUSER``; ``clone3`` answers
  ENOSYS, whose flags a filter cannot read, so the C library falls back to ``clone``): as
  root in a namespace of its own a process reaches much more of the kernel;
- the kernel keyring (``keyctl``, ``add_key``, ``request_key``), ``userfaultfd`` and
  ``perf_event_open``;
- typing into a terminal (``ioctl`` ``TIOCSTI``/``TIOCLINUX``);
- system calls of another ABI (32-bit ``int 0x80``, x32), which would skip every rule above.

Written as classic BPF by hand (no libseccomp needed), for x86_64 and aarch64; elsewhere
there is no filter and ``doctor`` says so.
"""

from __future__ import annotations

import errno
import os
import platform
import struct

# BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h).
_LD_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JSET = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RET = 0x06  # BPF_RET | BPF_K
_ALLOW = 0x7FFF0000
_ERRNO = 0x00050000

CLONE_NEWUSER = 0x10000000
TIOCSTI = 0x5412
TIOCLINUX = 0x541C

# seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (low word first).
_NR, _ARCH, _ARG0, _ARG1 = 0, 4, 16, 24

_ABIS = {
    # machine: (AUDIT_ARCH, x32 bit or 0, {name: number})
    "x86_64": (
        0xC000003E,
        0x40000000,
        {
            "clone": 56,
            "unshare": 272,
            "clone3": 435,
            "ioctl": 16,
            "keyctl": 250,
            "add_key": 248,
            "request_key": 249,
            "userfaultfd": 323,
            "perf_event_open": 298,
        },
    ),
    "aarch64": (
        0xC00000B7,
        0,
        {
            "clone": 220,
            "unshare": 97,
            "clone3": 435,
            "ioctl": 29,
            "keyctl": 219,
            "add_key": 217,
            "request_key": 218,
            "userfaultfd": 282,
            "perf_event_open": 241,
        },
    ),
}
DENIED = ("keyctl", "add_key", "request_key", "userfaultfd", "perf_event_open")


def supported() -> bool:
    return platform.machine() in _ABIS


def program() -> bytes:
    """The filter as ``struct sock_filter[]`` bytes."""
    arch, x32, numbers = _ABIS[platform.machine()]
    # (opcode, k, jump-if-true label, jump-if-false label); labels resolve to offsets.
    code: list[tuple[int, int, str | None, str | None]] = [
        (_LD_ABS, _ARCH, None, None),
        (_JEQ, arch, None, "enosys"),
        (_LD_ABS, _NR, None, None),
    ]
    if x32:
        code.append((_JGE, x32, "enosys", None))
    code += [
        (_JEQ, numbers["clone3"], "enosys", None),
        (_JEQ, numbers["unshare"], "flags", None),
        (_JEQ, numbers["clone"], "flags", None),
        (_JEQ, numbers["ioctl"], "ioctl", None),
        *((_JEQ, numbers[name], "eperm", None) for name in DENIED),
        (_RET, _ALLOW, None, None),
    ]
    labels = {"flags": len(code)}
    code += [
        (_LD_ABS, _ARG0, None, None),
        (_JSET, CLONE_NEWUSER, "eperm", None),
        (_RET, _ALLOW, None, None),
    ]
    labels["ioctl"] = len(code)
    code += [
        (_LD_ABS, _ARG1, None, None),
        (_JEQ, TIOCSTI, "eperm", None),
        (_JEQ, TIOCLINUX, "eperm", None),
        (_RET, _ALLOW, None, None),
    ]
    labels["eperm"] = len(code)
    code.append((_RET, _ERRNO | errno.EPERM, None, None))
    labels["enosys"] = len(code)
    code.append((_RET, _ERRNO | errno.ENOSYS, None, None))
    out = bytearray()
    for index, (op, k, true, false) in enumerate(code):
        jt = labels[true] - index - 1 if true else 0
        jf = labels[false] - index - 1 if false else 0
        out += struct.pack("<HBBI", op, jt, jf, k)
    return bytes(out)


def open_program() -> int:
    """A file descriptor holding the filter, at offset 0, for ``bwrap --seccomp``."""
    fd = os.memfd_create("swarm-seccomp")  # close-on-exec: only pass_fds hands it on
    os.write(fd, program())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
