"""HTTP Digest authentication (RFC 7616 with MD5 and qop=auth, as cheap cameras do) for the snapshot URL."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict

REALM = "MatthanSim"
MAX_NONCES = 256  # issued nonces remembered; older ones get a fresh challenge (stale=true)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def parse_auth_header(value: str) -> dict[str, str]:
    """Parse `Digest k="v", k2=v2` into a dict (quoted strings may contain commas)."""
    scheme, _, rest = value.partition(" ")
    if scheme.lower() != "digest":
        return {}
    out: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " ,":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < n and rest[i] == '"':
            end = rest.find('"', i + 1)
            end = n if end < 0 else end
            out[key] = rest[i + 1:end]
            i = end + 1
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            out[key] = rest[i:end].strip()
            i = end
    return out


class DigestChecker:
    def __init__(self) -> None:
        self._nonces: OrderedDict[str, None] = OrderedDict()

    def challenge(self, stale: bool = False) -> str:
        nonce = secrets.token_hex(16)
        self._nonces[nonce] = None
        while len(self._nonces) > MAX_NONCES:
            self._nonces.popitem(last=False)
        return (f'Digest realm="{REALM}", qop="auth", nonce="{nonce}", algorithm=MD5'
                + (", stale=true" if stale else ""))

    def check(self, header: str | None, method: str, username: str, password: str) -> bool:
        if not header:
            return False
        p = parse_auth_header(header)
        if p.get("username") != username or p.get("realm") != REALM or p.get("nonce") not in self._nonces:
            return False
        ha1 = _md5(f"{username}:{REALM}:{password}")
        ha2 = _md5(f"{method}:{p.get('uri', '')}")
        if p.get("qop") == "auth":
            expected = _md5(f"{ha1}:{p['nonce']}:{p.get('nc', '')}:{p.get('cnonce', '')}:auth:{ha2}")
        else:
            expected = _md5(f"{ha1}:{p['nonce']}:{ha2}")
        return hmac.compare_digest(expected, p.get("response", ""))
