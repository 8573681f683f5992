"""HTTP snapshot polling, for cameras whose RTSP stream is too heavy for the board or broken.

Credentials in the URL are moved into an auth handler (Digest and Basic, as ONVIF snapshot URIs need), so the
URL that reaches logs and errors has none.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import cv2
import numpy as np

from agent.models import StatusReason
from agent.video.errors import AuthFailed, DecodeError, OpenTimeout, Refused, SourceError, Unreachable, mask_uri
from agent.video.frame import Frame

MAX_JPEG_BYTES = 8 * 1024 * 1024  # a 4K JPEG is ~2 MB; more is not a snapshot


def _split_credentials(url: str) -> tuple[str, str | None, str | None]:
    parts = urlsplit(url)
    if parts.username is None:
        return url, None, None
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=host)), unquote(parts.username), unquote(parts.password or "")


class _OneTryDigestAuthHandler(urllib.request.HTTPDigestAuthHandler):
    """urllib answers every fresh Digest challenge again, up to 6 logins per request: with a wrong password one
    poll would burn through the 5-7 failures after which Hikvision-style cameras lock the account. Answer once;
    a rejected answer is final (unless the camera says only the nonce was stale)."""

    def http_error_auth_reqed(self, auth_header: str, host: str, req: urllib.request.Request,
                              headers: Any) -> Any:
        challenge = headers.get(auth_header, "") or ""
        if req.get_header(self.auth_header) is not None and "stale=true" not in challenge.lower():
            raise urllib.error.HTTPError(req.full_url, 401, "digest credentials rejected", headers, None)
        return super().http_error_auth_reqed(auth_header, host, req, headers)


class HttpSnapshotSource:
    """Polls a JPEG every `interval_s`; one `frames()` call lasts until the first failed poll."""

    live = True

    def __init__(self, url: str, *, interval_s: float = 1.0, timeout_s: float = 5.0) -> None:
        self._url, user, password = _split_credentials(url)
        self._masked = mask_uri(url)
        self.interval_s, self.timeout_s = interval_s, timeout_s
        handlers: list[urllib.request.BaseHandler] = []
        if user is not None:
            pwm = urllib.request.HTTPPasswordMgrWithDefaultRealm()
            pwm.add_password(None, self._url, user, password or "")
            handlers += [_OneTryDigestAuthHandler(pwm), urllib.request.HTTPBasicAuthHandler(pwm)]
        self._opener = urllib.request.build_opener(*handlers)
        self.frames_decoded = 0
        self.packets_in = 0
        self.decode_s = 0.0

    def describe(self) -> str:
        return self._masked

    def set_keyframes_only(self, on: bool) -> None:
        """Every snapshot is a whole picture: nothing to switch."""

    def _fetch(self) -> bytes:
        try:
            with self._opener.open(self._url, timeout=self.timeout_s) as resp:
                return resp.read(MAX_JPEG_BYTES)
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise AuthFailed(f"{self._masked}: snapshot credentials rejected ({exc.code})") from None
            raise SourceError(f"{self._masked}: snapshot request failed with HTTP {exc.code}",
                              reason=StatusReason.UNREACHABLE) from None
        except TimeoutError:
            raise OpenTimeout(f"{self._masked}: no snapshot within {self.timeout_s:.0f} s") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ConnectionRefusedError):
                raise Refused(f"{self._masked}: connection refused", reason=StatusReason.UNREACHABLE) from None
            if isinstance(exc.reason, TimeoutError):
                raise OpenTimeout(f"{self._masked}: no snapshot within {self.timeout_s:.0f} s") from None
            raise Unreachable(f"{self._masked}: cannot reach the camera ({type(exc.reason).__name__})") from None
        except OSError as exc:
            raise Unreachable(f"{self._masked}: cannot reach the camera ({type(exc).__name__})") from None

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        stop = stop or threading.Event()
        while True:
            started = time.monotonic()
            data = self._fetch()
            self.packets_in += 1
            t0 = time.perf_counter()
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            self.decode_s += time.perf_counter() - t0
            if img is None:
                raise DecodeError(f"{self._masked}: the snapshot is not a JPEG/PNG image")
            n = self.frames_decoded
            self.frames_decoded += 1
            yield Frame(y=cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), ts=time.time(), index=n, keyframe=True, image=img)
            if stop.wait(max(0.0, self.interval_s - (time.monotonic() - started))):
                return
