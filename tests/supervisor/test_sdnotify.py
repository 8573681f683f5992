"""sd_notify over a real unix datagram socket that the test binds, as systemd would."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.supervisor import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket at a short filesystem path (sun_path is limited to 108 bytes)."""
    path = f"/tmp/mt-notify-{uuid.uuid4().hex[:12]}.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5.0)
    yield sock, path
    sock.close()
    os.unlink(path)


def test_sdnotify_ready_status_watchdog_stopping(listener) -> None:  # type: ignore[no-untyped-def]
    """Each call sends the documented datagram to NOTIFY_SOCKET."""
    sock, path = listener
    n = Notifier.from_environment({"NOTIFY_SOCKET": path})
    assert n.ready("starting 3 cameras")
    assert sock.recv(4096) == b"READY=1\nSTATUS=starting 3 cameras"
    assert n.status("3/3 cameras\nonline")
    assert sock.recv(4096) == b"STATUS=3/3 cameras online"
    assert n.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert n.stopping()
    assert sock.recv(4096) == b"STOPPING=1"


def test_sdnotify_abstract_socket() -> None:
    """An address starting with '@' is a Linux abstract socket."""
    name = f"mt-notify-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5.0)
        assert Notifier.from_environment({"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(4096) == b"READY=1"


def test_sdnotify_unset_is_noop() -> None:
    """Outside systemd nothing is sent and nothing fails."""
    n = Notifier.from_environment({})
    assert not n.enabled
    assert not n.ready() and not n.watchdog() and not n.stopping()
    assert n.watchdog_interval_s is None


def test_sdnotify_status_sent_only_on_change(listener) -> None:  # type: ignore[no-untyped-def]
    """A status repeated every tick is sent once."""
    sock, path = listener
    n = Notifier(path)
    assert n.status("4/4") and not n.status("4/4") and n.status("3/4")
    assert [sock.recv(4096), sock.recv(4096)] == [b"STATUS=4/4", b"STATUS=3/4"]


def test_sdnotify_watchdog_interval_is_half_and_honours_pid() -> None:
    """WATCHDOG_USEC=20 s gives a 10 s ping; a WATCHDOG_PID for another process disables it."""
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "20000000"}
    assert Notifier.from_environment(env).watchdog_interval_s == 10.0
    assert Notifier.from_environment({**env, "WATCHDOG_PID": str(os.getpid())}).watchdog_interval_s == 10.0
    assert Notifier.from_environment({**env, "WATCHDOG_PID": "1"}).watchdog_interval_s is None


def test_sdnotify_dead_socket_does_not_raise(tmp_path: Path) -> None:
    """A socket path with nobody listening is reported as False, not an exception."""
    assert not Notifier(str(tmp_path / "gone.sock")).watchdog()


def test_sdnotify_never_blocks_on_full_receiver(listener) -> None:  # type: ignore[no-untyped-def]
    """When systemd does not read, sends are dropped (False) instead of freezing the caller."""
    sock, path = listener
    n = Notifier(path)
    results = [n.watchdog() for _ in range(100)]  # far beyond net.unix.max_dgram_qlen (default 10)
    assert results[0] and not all(results)
    assert sock.recv(4096) == b"WATCHDOG=1"
