"""Who a caller is, from its credential: a certificate's name and kind, or a per-credential token.

Kinds:

- ``client``: submits tasks and sees only its own;
- ``worker``: registers as a worker under its own name only, for the task roles it allows;
- ``operator``: everything, every task (the shared ``swarm.token`` is an operator credential:
  the swarm of one uses it for itself);
- ``host``: a certificate from ``swarm-lsp certs --host`` without a kind (made before kinds
  existed): a client and a worker under any declared name, as before.

A certificate carries its kind in the subject's organizational units
(``OU=swarm-kind=worker``, ``OU=swarm-roles=echo,sleep``, ``OU=swarm-capacity=4``) and its
name in the common name. A token is issued by the operator (``swarm-lsp token``): the
coordinator keeps only its sha256 in a table file (``<state>/tokens.json``), re-read when it
changes.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from swarm_lsp.errors import ConfigError

KINDS = ("client", "worker", "operator")
KIND_OU = "swarm-kind="
ROLES_OU = "swarm-roles="
CAPACITY_OU = "swarm-capacity="
TABLE_FILE = "tokens.json"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Principal:
    """An authenticated caller."""

    source: str  # cert | token | shared | none
    name: str  # certificate CN, token name; "" for shared/none
    kind: str  # client | worker | operator | host
    task_roles: frozenset[str] | None = None  # roles it may work; None: any
    max_capacity: int = 0  # 0: the coordinator's cap

    @property
    def id(self) -> str:
        """The identity that owns tasks and blobs, e.g. ``cert:editor`` or ``token:w1``."""
        return f"{self.source}:{self.name}"

    @property
    def fixed_name(self) -> bool:
        """A worker with this credential registers under its name only."""
        return self.source in ("cert", "token") and self.kind != "host"

    @property
    def can_submit(self) -> bool:
        return self.kind in ("client", "operator", "host")

    @property
    def can_work(self) -> bool:
        return self.kind in ("worker", "operator", "host")

    @property
    def sees_all(self) -> bool:
        return self.kind == "operator"


OPERATOR = Principal(source="shared", name="", kind="operator")
ANONYMOUS = Principal(source="none", name="", kind="operator")  # loopback, no token configured


def token_hash(token: str | bytes) -> str:
    data = token.encode() if isinstance(token, str) else token
    return hashlib.sha256(data).hexdigest()


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ConfigError(f"credential kind {kind!r} is not one of {', '.join(KINDS)}")
    return kind


# -- certificates -------------------------------------------------------------------------


def subject_units(kind: str, roles: Iterable[str] = (), capacity: int = 0) -> list[str]:
    """The organizational units that carry a credential's kind, roles and capacity."""
    units = [KIND_OU + check_kind(kind)]
    roles = sorted(set(roles))
    if roles:
        units.append(ROLES_OU + ",".join(roles))
    if capacity:
        units.append(CAPACITY_OU + str(capacity))
    return units


@functools.lru_cache(maxsize=256)
def principal_from_pem(pem: bytes) -> Principal:
    """The principal a client certificate names (kind ``host`` when it names none)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_pem_x509_certificate(pem)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = str(names[0].value) if names else ""
    kind, roles, capacity = "host", None, 0
    for attribute in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME):
        value = str(attribute.value)
        if value.startswith(KIND_OU) and value[len(KIND_OU) :] in KINDS:
            kind = value[len(KIND_OU) :]
        elif value.startswith(ROLES_OU):
            roles = frozenset(r for r in value[len(ROLES_OU) :].split(",") if r)
        elif value.startswith(CAPACITY_OU) and value[len(CAPACITY_OU) :].isdigit():
            capacity = int(value[len(CAPACITY_OU) :])
    return Principal(source="cert", name=name, kind=kind, task_roles=roles, max_capacity=capacity)


# -- tokens -------------------------------------------------------------------------------


class TokenTable:
    """Per-credential tokens (their sha256 only), from a JSON file re-read when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries: dict[str, Principal] = {}  # sha256 -> principal
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0

    def _reload(self) -> None:
        now = time.monotonic()
        if now - self._checked < 1.0 and self._stamp is not None:
            return
        self._checked = now
        try:
            info = self.path.stat()
        except FileNotFoundError:
            self._entries, self._stamp = {}, (0, 0)
            return
        stamp = (info.st_mtime_ns, info.st_size)
        if stamp == self._stamp:
            return
        entries: dict[str, Principal] = {}
        for entry in _read_table(self.path):
            roles = entry.get("roles")
            entries[str(entry["sha256"])] = Principal(
                source="token",
                name=str(entry["name"]),
                kind=str(entry["kind"]),
                task_roles=frozenset(roles) if roles else None,
                max_capacity=int(entry.get("capacity", 0)),
            )
        self._entries, self._stamp = entries, stamp

    def active(self) -> bool:
        """True when any token is issued (then every call must present one)."""
        with self._lock:
            self._reload()
            return bool(self._entries)

    def lookup(self, token: str | bytes) -> Principal | None:
        if not token:
            return None
        digest = token_hash(token)
        with self._lock:
            self._reload()
            # One dict probe by the token's sha256, not a scan of the table: a call's cost no
            # longer grows with the number of issued tokens (the guard and the identity each
            # look a call's token up). Only the digest's timing can show, and a digest says
            # nothing usable about a valid token (the table stores digests only anyway).
            return self._entries.get(digest)

    def accepts(self, token: bytes) -> bool:
        return self.lookup(token) is not None


def _read_table(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read the token table {path}: {err}") from err
    tokens = data.get("tokens", []) if isinstance(data, dict) else []
    return [t for t in tokens if isinstance(t, dict) and "sha256" in t and "name" in t]


def issue_token(
    path: Path, *, name: str, kind: str, roles: Iterable[str] = (), capacity: int = 0
) -> str:
    """Add a new token for ``name`` to the table at ``path`` (0600); return the token.

    An earlier token of the same name and kind is replaced (revoked).
    """
    check_kind(kind)
    if not name:
        raise ConfigError("a token needs a name (--name)")
    token = secrets.token_urlsafe(32)
    entries = _read_table(path) if path.exists() else []
    entries = [e for e in entries if not (e["name"] == name and e.get("kind") == kind)]
    entry: dict[str, Any] = {"sha256": token_hash(token), "name": name, "kind": kind}
    if roles:
        entry["roles"] = sorted(set(roles))
    if capacity:
        entry["capacity"] = capacity
    entries.append(entry)
    write_private(path, json.dumps({"tokens": entries}, indent=2) + "\n")
    return token


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
