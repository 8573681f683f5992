"""Pure decisions of interrogation: the credential budget, which profile to watch, and what a failure means.

No I/O here, so each rule is unit-tested on its own (tests/discovery/test_onvif_unit.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from agent.discovery.results import Discovered, FailureReason, Profile
from agent.discovery.settings import AUTH_ATTEMPTS, AUTH_WINDOW_S

_AUTH_WORDS = ("notauthorized", "not authorized", "failedauthentication", "unauthorized", "authority", "auth")
_CLOCK_WORDS = ("messageexpired", "expired", "timestamp", "created")
_PREFERRED_ENCODING = {"H264": 0, "H265": 1, "MPEG4": 2, "JPEG": 3}


def auth_key(device: Discovered) -> str:
    """The camera a credential budget counts for: its endpoint uuid, else the host:port its device service is at
    (several devices may share an IP behind one NVR), else its IP."""
    if device.endpoint_uuid:
        return f"uuid:{device.endpoint_uuid.lower()}"
    parts = urlsplit(device.xaddr)
    if parts.hostname:
        return f"{parts.hostname}:{parts.port or 80}"
    return device.ip


class AuthBudget:
    """At most `attempts` credential attempts per camera per `window_s`, shared by every interrogation.

    `take` before each attempt; `failed` when the camera rejected it, `succeeded` when it accepted it. A success
    clears the camera's count (camera firmwares reset their failure counter on a good login). This one lives in
    memory; agent.discovery.auth_store.FileAuthBudget keeps the count across restarts (wall clock then).
    """

    def __init__(self, attempts: int = AUTH_ATTEMPTS, window_s: float = AUTH_WINDOW_S, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._clock = clock
        self._tries: dict[str, list[float]] = {}

    def _recent(self, key: str, now: float) -> list[float]:
        # min(): a time stamp from the future means the clock was set back since (only a wall clock does that);
        # how old it really is cannot be known, so it counts as just now and expires one window later.
        recent = [min(t, now) for t in self._tries.get(key, []) if now - t < self.window_s]
        if recent:
            self._tries[key] = recent
        else:
            self._tries.pop(key, None)
        return recent

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else now

    def remaining(self, key: str, now: float | None = None) -> int:
        return max(0, self.attempts - len(self._recent(key, self._now(now))))

    def take(self, key: str, now: float | None = None) -> bool:
        now = self._now(now)
        recent = self._recent(key, now)
        if len(recent) >= self.attempts:
            return False
        self._tries[key] = [*recent, now]
        return True

    def retry_after_s(self, key: str, now: float | None = None) -> float:
        now = self._now(now)
        recent = self._recent(key, now)
        return 0.0 if len(recent) < self.attempts else self.window_s - (now - recent[0])

    def failed(self, key: str) -> None:
        """The attempt `take` allowed was rejected. In memory the attempt already counts: nothing to do."""

    def succeeded(self, key: str) -> None:
        self._tries.pop(key, None)


def classify_fault(exc: BaseException) -> FailureReason:
    """Map a failed call to the reason the installer sees."""
    # Imported here: the daemon uses this module's budget and profile rules but must not load the SOAP stack,
    # which only the interrogation helper process needs (agent.discovery.remote).
    import aiohttp
    import zeep.exceptions

    if isinstance(exc, TimeoutError):
        return FailureReason.TIMEOUT
    if isinstance(exc, zeep.exceptions.TransportError):
        return FailureReason.AUTH_FAILED if exc.status_code in (401, 403) else FailureReason.NO_ONVIF_ANSWER
    if isinstance(exc, zeep.exceptions.Fault):
        text = " ".join(str(x) for x in (exc.message, exc.code, exc.subcodes, exc.detail) if x).lower()
        if any(word in text for word in _CLOCK_WORDS) and "auth" not in text.replace("authority", ""):
            return FailureReason.CLOCK_SKEW
        if any(word in text for word in _AUTH_WORDS):
            return FailureReason.AUTH_FAILED
        return FailureReason.UNSUPPORTED
    if isinstance(exc, (aiohttp.ClientError, OSError, zeep.exceptions.XMLSyntaxError, zeep.exceptions.XMLParseError)):
        return FailureReason.NO_ONVIF_ANSWER
    return FailureReason.UNSUPPORTED


def choose_substream(profiles: Sequence[Profile], min_width: int, token: str | None = None) -> Profile | None:
    """The profile to watch: the forced token, else the smallest at least `min_width` wide, else the largest.

    Ties go to H.264 (cheapest to decode on a Pi). Profiles without a resolution come last.
    """
    if token:
        for p in profiles:
            if p.token == token:
                return p
    sized = [p for p in profiles if p.width]
    wide = [p for p in sized if (p.width or 0) >= min_width]
    if wide:
        return min(wide, key=lambda p: (p.width, _PREFERRED_ENCODING.get((p.encoding or "").upper(), 9)))
    if sized:
        return max(sized, key=lambda p: (p.width, -_PREFERRED_ENCODING.get((p.encoding or "").upper(), 9)))
    return profiles[0] if profiles else None
