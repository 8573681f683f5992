"""The systemd notification protocol in a few lines: datagrams of `KEY=value` lines to $NOTIFY_SOCKET.

No libsystemd binding: the protocol is one `sendto()` on a unix datagram socket, and a dependency that needs a C
library is one more thing to break on an odd board. Outside systemd (NOTIFY_SOCKET unset) every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)

# What sending can raise when systemd is gone or the socket is wrong; the agent keeps working without systemd.
_SEND_ERRORS = (OSError,)


class Notifier:
    """Sends READY, STATUS, WATCHDOG and STOPPING to systemd, if the service manager asked for them."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self._address = address
        self._watchdog_usec = watchdog_usec
        self._last_status: str | None = None
        self._warned = False

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Notifier:
        """Read NOTIFY_SOCKET and WATCHDOG_USEC (honouring WATCHDOG_PID: the watchdog may be meant for another)."""
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET") or None
        usec: int | None = None
        try:
            usec = int(env.get("WATCHDOG_USEC", "")) or None
        except ValueError:
            usec = None
        pid = env.get("WATCHDOG_PID")
        if pid and pid.isdigit() and int(pid) != os.getpid():
            usec = None
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to send WATCHDOG=1: half of WatchdogSec, as sd_watchdog_enabled(3) advises; None if off."""
        if not self._address or not self._watchdog_usec:
            return None
        return self._watchdog_usec / 2 / 1_000_000

    def notify(self, message: str) -> bool:
        """Send one raw notification ("READY=1\\nSTATUS=..."); False when not under systemd or on error."""
        if not self._address:
            return False
        address = "\0" + self._address[1:] if self._address.startswith("@") else self._address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                # MSG_DONTWAIT: a receiver that is not reading (a busy PID 1) fills its queue of ~10 datagrams;
                # a blocking send would then freeze the supervisor loop. A dropped ping is retried next interval.
                sock.sendto(message.encode("utf-8"), socket.MSG_DONTWAIT, address)
        except _SEND_ERRORS as exc:
            if not self._warned:  # once: a broken socket would otherwise log every second
                log.warning("cannot notify systemd at %s: %s", self._address, exc)
                self._warned = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1" + (f"\nSTATUS={_one_line(status)}" if status else ""))

    def status(self, text: str) -> bool:
        """Send STATUS=text if it differs from the last one sent (systemctl status shows the latest)."""
        text = _one_line(text)
        if text == self._last_status:
            return False
        self._last_status = text
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1" + (f"\nSTATUS={_one_line(status)}" if status else ""))


def _one_line(text: str) -> str:
    return " ".join(text.split())
