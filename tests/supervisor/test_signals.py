"""The signal queue: handlers only record; the loop wakes at once and acts."""

from __future__ import annotations

import os
import signal
import time

from agent.supervisor import SignalQueue


def test_signals_queued_in_order_and_wake_wait() -> None:
    """SIGHUP then SIGTERM to ourselves are returned in order, and wait() returns well before its timeout."""
    with SignalQueue((signal.SIGHUP, signal.SIGTERM)) as q:
        os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGTERM)
        t0 = time.monotonic()
        q.wait(10.0)
        assert time.monotonic() - t0 < 5.0
        assert q.pop_all() == [signal.SIGHUP, signal.SIGTERM]
        assert q.pop_all() == []


def test_signals_inject_wakes_wait() -> None:
    """A stop requested by code wakes a sleeping loop like a real signal."""
    with SignalQueue((signal.SIGUSR1,)) as q:
        q.inject(signal.SIGTERM)
        t0 = time.monotonic()
        q.wait(10.0)
        assert time.monotonic() - t0 < 5.0 and q.pop_all() == [signal.SIGTERM]


def test_signals_previous_handlers_restored() -> None:
    """Closing the queue puts back the handlers that were there before."""
    before = signal.getsignal(signal.SIGHUP)
    with SignalQueue((signal.SIGHUP,)):
        assert signal.getsignal(signal.SIGHUP) is not before
    assert signal.getsignal(signal.SIGHUP) is before
