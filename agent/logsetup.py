"""Logging to stderr for journald, with one redaction step that every line passes through.

Passwords reach log lines in ways no reviewer catches one by one: an RTSP URI with `user:pass@` inside, an
exception from a library that quotes the URL it failed on, a config dump. So redaction happens once, on the final
formatted text (message, arguments and traceback alike), not at each call site.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Iterable

MASK = "***"

# scheme://user:password@host  ->  scheme://user:***@host   (rtsp, http, https, mqtt, ...)
_URI_USERINFO = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)(?P<pw>[^\s@/]*)(?P<at>@)")
# password=secret, "password": "secret", passwd: secret, pwd=..., secret=..., token=...
_KEY_VALUE = re.compile(
    r"(?P<head>(?i:\b(?:password|passwd|pwd|pass|secret|token|api_key|apikey)\b)[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<pw>[^\s\"',;&}]+)"
)


class SecretRegistry:
    """Literal secrets (from the config) that must never appear in a log line, whatever surrounds them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()

    def add(self, secrets: Iterable[str | None]) -> None:
        # Very short values would mask innocent text (a password "1" would blank every digit 1).
        new = {s for s in secrets if s and len(s) >= 4}
        with self._lock:
            self._secrets = self._secrets | new

    def snapshot(self) -> frozenset[str]:
        return self._secrets


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask credentials inside URIs, key=value pairs, and any known literal secret."""
    text = _URI_USERINFO.sub(lambda m: m.group("head") + MASK + m.group("at"), text)
    text = _KEY_VALUE.sub(lambda m: m.group("head") + MASK, text)
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then redacts the whole result, so tracebacks are covered too."""

    def __init__(self, fmt: str, registry: SecretRegistry) -> None:
        super().__init__(fmt)
        self._registry = registry

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self._registry.snapshot())


class CameraAdapter(logging.LoggerAdapter):
    """Puts the camera name first on a per-camera line, so `journalctl | grep cam-chợ` finds everything."""

    def process(self, msg, kwargs):  # type: ignore[no-untyped-def]
        return f"[{self.extra['camera']}] {msg}", kwargs


def camera_logger(logger: logging.Logger, camera_id: str) -> CameraAdapter:
    return CameraAdapter(logger, {"camera": camera_id})


def _format_for_environment() -> str:
    # journald stamps each line itself; a second timestamp only wastes the installer's screen width.
    if os.environ.get("JOURNAL_STREAM"):
        return "%(levelname)s %(name)s: %(message)s"
    return "%(asctime)s %(levelname)s %(name)s: %(message)s"


# The one registry of literal secrets for this process; the config loader feeds it.
SECRETS = SecretRegistry()


def setup_logging(level: str | int = "INFO", registry: SecretRegistry = SECRETS) -> logging.Handler:
    """Route the root logger to stderr through the redacting formatter. Safe to call more than once."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_matthan", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(_format_for_environment(), registry))
    handler._matthan = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # Third-party libraries that log request URLs at DEBUG would otherwise flood the journal.
    for noisy in ("zeep", "httpx", "httpcore", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return handler
