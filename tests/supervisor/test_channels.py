"""The worker/supervisor channels in one process: heartbeat counters, the report pipe and its limits."""

from __future__ import annotations

import ctypes
import multiprocessing
import threading

import pytest

from agent.models import CameraReport
from agent.supervisor.channels import MAX_REPORT_BYTES, Heartbeat, ReportReader, ReportSink


def test_heartbeat_counts_per_camera_and_all() -> None:
    """beat(camera) moves one counter, beat() moves every counter; an unknown camera is a bug."""
    hb = Heartbeat(multiprocessing.get_context("spawn").RawArray(ctypes.c_uint64, 2), ["a", "b"])
    hb.beat("a")
    hb.beat("a", frames=3)
    hb.beat()
    assert hb.read() == (5, 1)
    with pytest.raises(KeyError):
        hb.beat("zzz")


def test_report_pipe_roundtrip_and_eof() -> None:
    """Reports arrive in order; when the writer is gone the reader says closed instead of blocking."""
    r, w = multiprocessing.Pipe(duplex=False)
    sink, reader = ReportSink(w), ReportReader(r)
    for n in range(3):
        assert sink.put(CameraReport(camera_id="a", ts=1.0, connected=True, frames_in=n))
    assert [rep.frames_in for rep in reader.drain()] == [0, 1, 2]
    w.close()
    assert list(reader.drain()) == [] and reader.closed


def test_report_too_large_for_atomic_write_is_dropped() -> None:
    """A report bigger than PIPE_BUF could be torn by a kill, so it is dropped and counted."""
    r, w = multiprocessing.Pipe(duplex=False)
    sink = ReportSink(w)
    assert not sink.put("x" * (MAX_REPORT_BYTES + 1))
    assert sink.dropped == 1 and not r.poll(0)


def test_heartbeat_idle_wait_beats_and_stops() -> None:
    """idle_wait beats while waiting, returns False on timeout and True at once when stop is already set."""
    hb = Heartbeat(multiprocessing.get_context("spawn").RawArray(ctypes.c_uint64, 1), ["a"])
    stop = threading.Event()
    assert hb.idle_wait("a", stop, 0.05) is False and hb.read()[0] >= 1
    stop.set()
    assert hb.idle_wait("a", stop, 60.0) is True
