"""The suite's network guard: tests send traffic only to loopback or inside network namespaces they create.

`install()` adds a `sys.addaudithook` hook on the audit events `socket.connect`, `socket.sendto` and
`socket.sendmsg`. When the destination is an AF_INET/AF_INET6 address outside loopback (127.0.0.0/8, ::1) and the
calling thread is still in the network namespace pytest started in, the hook records a `Violation` and raises
`NetworkGuardViolation` *before* the call reaches the kernel, so nothing is sent. Threads that joined a test's own
namespace (agent/simulator/netns.py) may talk to anything there. Unix sockets, netlink and packet sockets are not
checked.

Limits, on purpose:
- child processes (the agent under `tests/e2e`, mosquitto, GStreamer's RTSP host, `ip netns exec ...`) do not run
  this hook; they are kept in line by being started inside a namespace or bound to loopback;
- sockets opened by C libraries (FFmpeg inside PyAV, GStreamer) bypass Python's socket module and are not seen;
- name resolution (`getaddrinfo`) is not checked; a connect by host name is allowed only for `localhost`.

An audit hook cannot be removed, so the hook is cheap for every other event (one set lookup) and the fixtures in
tests/conftest.py turn it on for the session and fail the test during which a violation was recorded (even when
the code under test swallowed the exception).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
from dataclasses import dataclass
from typing import Any

WATCHED = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg"})
INET = frozenset({socket.AF_INET, socket.AF_INET6})
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
THREAD_NETNS = "/proc/thread-self/ns/net"


class NetworkGuardViolation(RuntimeError):
    """A test tried to send traffic off this machine from the root network namespace (nothing was sent).

    Not an OSError on purpose: code under test must not mistake it for a network failure and retry."""


@dataclass(frozen=True)
class Violation:
    event: str
    address: Any
    thread: str

    def __str__(self) -> str:
        return f"{self.event} to {self.address!r} from thread {self.thread!r} in the root network namespace"


_lock = threading.Lock()
_violations: list[Violation] = []
_state: dict[str, Any] = {"installed": False, "active": False, "root_ns": None}


def netns_id(path: str = THREAD_NETNS) -> tuple[int, int] | None:
    """(device, inode) of a network namespace file, or None when /proc cannot tell."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def is_local_destination(host: Any) -> bool:
    """True for loopback (and the unspecified address, which Linux delivers to the local host)."""
    if isinstance(host, bytes | bytearray):
        host = bytes(host).decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host == "" or host.lower() in LOCAL_NAMES:  # "" is INADDR_ANY in Python's socket module
        return True
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 scope ("fe80::1%eth0")
    except ValueError:
        return False  # any other host name: a test has no business resolving one to connect
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def _in_root_namespace() -> bool:
    here = netns_id()
    # /proc unreadable: we cannot tell, so assume the worst (the root namespace).
    return here is None or here == _state["root_ns"]


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in WATCHED or not _state["active"]:
        return
    sock, address = args[0], args[1]
    if address is None or getattr(sock, "family", None) not in INET:
        return
    host = address[0] if isinstance(address, tuple) and address else address
    if is_local_destination(host) or not _in_root_namespace():
        return
    violation = Violation(event, address, threading.current_thread().name)
    with _lock:
        _violations.append(violation)
    raise NetworkGuardViolation(f"blocked {violation}: tests may only talk to loopback or inside a network "
                                "namespace they create (tests/rig/netguard.py)")


def install() -> None:
    """Turn the guard on (the hook is added once per process) with the calling thread's namespace as the root."""
    _state["root_ns"] = netns_id()
    if not _state["installed"]:
        sys.addaudithook(_hook)
        _state["installed"] = True
    _state["active"] = True


def deactivate() -> None:
    """The hook stays (it cannot be removed) but lets everything through."""
    _state["active"] = False


def take_violations() -> list[Violation]:
    """The violations recorded since the last call, and forget them."""
    with _lock:
        taken = list(_violations)
        _violations.clear()
    return taken
