"""The status machine fed by the real camera pipeline over loopback RTSP: faults published within 15 s, recovery
within 10 s, at the pipeline's real report interval. Uses the video package's RTSP server and fault proxy
(imported in conftest.py)."""

from __future__ import annotations

import time

import pytest

from agent.models import CameraState, CameraStatus, DecodeMode, StatusReason

pytestmark = [pytest.mark.rtsp, pytest.mark.slow]

FAULT_WITHIN_S = 15.0
RECOVER_WITHIN_S = 10.0


def online(s: CameraStatus) -> bool:
    return s.state is CameraState.ONLINE


def test_status_live_refused_and_recovered(rtsp_server_for, live_clip, fault_proxy, live_board) -> None:
    """A camera refusing RTSP is published offline/rtsp_refused within 15 s, and online within 10 s of healing."""
    proxy = fault_proxy(rtsp_server_for(live_clip).port)
    station = live_board(proxy.url())
    assert station.wait_for(online, 20, after=0) is not None
    t0 = time.monotonic()
    proxy.refuse()
    took = station.wait_for(lambda s: s.reason is StatusReason.RTSP_REFUSED and s.state is CameraState.OFFLINE,
                            FAULT_WITHIN_S, after=t0)
    assert took is not None and took <= FAULT_WITHIN_S, station.published
    t1 = time.monotonic()
    proxy.heal()
    back = station.wait_for(online, RECOVER_WITHIN_S + 2, after=t1)
    assert back is not None and back <= RECOVER_WITHIN_S, station.published


def test_status_live_stalled(rtsp_server_for, live_clip, fault_proxy, live_board) -> None:
    """A camera that keeps its socket open but sends nothing is offline/stream_stalled within 15 s."""
    proxy = fault_proxy(rtsp_server_for(live_clip).port)
    station = live_board(proxy.url())
    assert station.wait_for(online, 20, after=0) is not None
    t0 = time.monotonic()
    proxy.stall()
    took = station.wait_for(
        lambda s: s.state is CameraState.OFFLINE and s.reason in (StatusReason.STREAM_STALLED,
                                                                 StatusReason.RTSP_TIMEOUT),
        FAULT_WITHIN_S, after=t0)
    assert took is not None, station.published
    t1 = time.monotonic()
    proxy.heal()
    assert station.wait_for(online, RECOVER_WITHIN_S + 2, after=t1) is not None, station.published


def test_status_live_frozen(rtsp_server_for, frozen_clip, live_board) -> None:
    """A stream whose picture stops changing (at 2 s) is published offline/frozen_image, never stream_stalled."""
    station = live_board(rtsp_server_for(frozen_clip).url(), DecodeMode.FULL)
    t0 = time.monotonic()
    took = station.wait_for(lambda s: s.state is CameraState.OFFLINE and s.reason is StatusReason.FROZEN_IMAGE,
                            25, after=t0)
    assert took is not None, station.published
    reasons = [s.reason for _, s in station.published]
    assert StatusReason.STREAM_STALLED not in reasons[: reasons.index(StatusReason.FROZEN_IMAGE) + 1]
