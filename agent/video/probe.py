"""Is a camera's port answering again? A TCP connect, nothing more, to cut a long reconnect wait short.

The reconnect backoff grows with the outage (up to 60 s between attempts), which spares a dead camera and the
Pi; but a camera back from a 10-minute power cut would then wait up to a minute, while the station is promised
"online within 10 s of recovery". A bare TCP connect to the stream's port every couple of seconds costs the
camera nothing (no RTSP request, no login, so no lockout risk) and tells when it answers again.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}
PROBE_TIMEOUT_S = 1.0  # s; a camera on the LAN answers a SYN in milliseconds


def stream_endpoint(uri: str) -> tuple[str, int] | None:
    """(host, port) of a network stream URI; None for files, image sequences and unknown schemes."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def port_answers(host: str, port: int, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """True when a TCP connection to host:port is accepted (and closed again at once)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
