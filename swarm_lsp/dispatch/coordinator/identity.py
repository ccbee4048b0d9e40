"""Who is calling: the principal a quota, an ownership check or a worker session is about.

The guard interceptor has already checked the transport (peer address, TLS, that a presented
token is known); this decides which credential the call speaks for, in this order: the local
fallback worker's token, a per-credential token from the table, a certificate with a kind,
the shared token (operator), a certificate without a kind (``host``), nothing (loopback
without a token: operator).
"""

from __future__ import annotations

import hmac
from typing import Any

from swarm_lsp.dispatch.credentials import (
    ANONYMOUS,
    OPERATOR,
    Principal,
    TokenTable,
    principal_from_pem,
)
from swarm_lsp.dispatch.security import TOKEN_HEADER

# The coordinator's own local fallback worker (it presents a token only this process knows).
LOCAL_WORKER = Principal(source="local", name="local", kind="worker")


class Identities:
    def __init__(self, shared_token: str, tokens: TokenTable | None, local_token: str = "") -> None:
        self._shared = shared_token.encode()
        self._local = local_token.encode()
        self.tokens = tokens

    def principal(self, context: Any) -> Principal:
        presented = b""
        for key, value in context.invocation_metadata() or ():
            if key == TOKEN_HEADER:
                presented = value.encode() if isinstance(value, str) else value
        if presented and self._local and hmac.compare_digest(presented, self._local):
            return LOCAL_WORKER
        if presented and self.tokens is not None:
            known = self.tokens.lookup(presented)
            if known is not None:
                return known
        certified = _certificate_principal(context)
        if certified is not None and certified.kind != "host":
            return certified
        if self._shared and presented and hmac.compare_digest(presented, self._shared):
            return OPERATOR
        return certified or ANONYMOUS


def _certificate_principal(context: Any) -> Principal | None:
    try:
        auth = context.auth_context() or {}
    except (AttributeError, RuntimeError):
        return None
    pems = auth.get("x509_pem_cert") or ()
    if not pems:
        return None
    pem = pems[0]
    return principal_from_pem(pem if isinstance(pem, bytes) else str(pem).encode())
