"""Typed source errors, each carrying the `StatusReason` the camera status machine publishes.

Messages are built here from a masked URI, never from the library's exception text, because FFmpeg quotes the
URL it failed on, password included.
"""

from __future__ import annotations

import errno
from urllib.parse import urlsplit, urlunsplit

import av

from agent.models import StatusReason


def mask_uri(uri: str) -> str:
    """The URI with any password replaced by ***, for messages and logs."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparsable uri>"
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class SourceError(Exception):
    """A frame source failed; `reason` says why in the station's vocabulary, `message` what to do next."""

    reason: StatusReason = StatusReason.DECODER_ERROR

    def __init__(self, message: str, *, reason: StatusReason | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class Unreachable(SourceError):
    reason = StatusReason.UNREACHABLE


class Refused(SourceError):
    reason = StatusReason.RTSP_REFUSED


class OpenTimeout(SourceError):
    reason = StatusReason.RTSP_TIMEOUT


class AuthFailed(SourceError):
    reason = StatusReason.AUTH_FAILED


class Stalled(SourceError):
    reason = StatusReason.STREAM_STALLED


class DecodeError(SourceError):
    reason = StatusReason.DECODER_ERROR


class NotFound(SourceError):
    """A file, image sequence or RTSP path that does not exist: configuration, not the camera."""

    reason = StatusReason.RTSP_REFUSED


class EndOfStream(Exception):
    """A finite source (file, image sequence) is exhausted; a live source ending is `Stalled` instead."""


_UNREACHABLE_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}


def classify(exc: BaseException, uri: str, *, opening: bool, elapsed_s: float, timeout_s: float) -> SourceError:
    """Map a PyAV/OS exception from opening or reading `uri` to a typed `SourceError`."""
    where = mask_uri(uri)
    code = getattr(exc, "errno", None)
    if isinstance(exc, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
        return AuthFailed(f"{where}: credentials rejected (401/403); check the camera user and password")
    if isinstance(exc, av.error.HTTPNotFoundError):
        return NotFound(f"{where}: the camera has no stream at this path (404); check the stream URI")
    if isinstance(exc, ConnectionRefusedError) or code == errno.ECONNREFUSED:
        return Refused(f"{where}: connection refused; the camera's RTSP service is off or on another port")
    if code in _UNREACHABLE_ERRNOS:
        return Unreachable(f"{where}: host unreachable; check the camera's power, cable and IP address")
    if isinstance(exc, FileNotFoundError) or code == errno.ENOENT:
        return NotFound(f"{where}: no such file")
    if isinstance(exc, TimeoutError | av.error.ExitError) or code == errno.ETIMEDOUT or elapsed_s >= timeout_s * 0.9:
        if opening:
            return OpenTimeout(f"{where}: no answer within {timeout_s:.0f} s; the camera is busy or hung")
        return Stalled(f"{where}: no data for {timeout_s:.0f} s; the stream stalled")
    if isinstance(exc, av.error.ConnectionResetError | ConnectionResetError | BrokenPipeError):
        return Stalled(f"{where}: the camera closed the connection")
    if opening:
        return DecodeError(f"{where}: cannot open the stream ({type(exc).__name__}); is it a video the camera serves?")
    return DecodeError(f"{where}: decoding failed ({type(exc).__name__})")
