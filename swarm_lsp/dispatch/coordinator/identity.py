"""Who is calling: the identity a quota or an ownership check is about."""

from __future__ import annotations

from typing import Any


def caller(context: Any) -> str:
    """The caller's identity: its certificate's name under mTLS, else its address."""
    try:
        auth = context.auth_context() or {}
    except (AttributeError, RuntimeError):
        auth = {}
    names = auth.get("x509_common_name") or ()
    if names:
        name = names[0]
        return "cert:" + (name.decode() if isinstance(name, bytes) else str(name))
    peer = str(context.peer() or "")
    return "peer:" + peer.rsplit(":", 1)[0]
