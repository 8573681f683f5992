"""Camera faults injected into the simulator: typed CameraReports within 15 s, recovery within 10 s of clearing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agent.camera import CameraPipeline, PipelineSettings
from agent.models import CameraReport, StatusReason
from tests.camera.reports import Collector
from tests.rig.sim import running_cluster

pytestmark = [pytest.mark.rtsp, pytest.mark.slow]

REPORT_WITHIN_S = 15.0
RECOVER_WITHIN_S = 10.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    scenario = ({"cameras": [{"name": n} for n in ("refuse", "stall", "freeze")]})
    with running_cluster(scenario) as c:
        yield c


@pytest.fixture
def watch(cluster: Any) -> Iterator[Callable[[str], Collector[CameraReport]]]:
    stops: list[tuple[threading.Event, threading.Thread]] = []

    def start(name: str) -> Collector[CameraReport]:
        reports: Collector[CameraReport] = Collector()
        settings = PipelineSettings(name, cluster.info(name).rtsp_uri(with_credentials=True), report_interval_s=1.0)
        pipeline = CameraPipeline(settings, on_event=lambda e: None, on_report=reports)
        stop = threading.Event()
        thread = threading.Thread(target=pipeline.run, args=(stop,), daemon=True)
        thread.start()
        stops.append((stop, thread))
        return reports

    yield start
    for stop, thread in stops:
        stop.set()
        thread.join(15)


def _healthy(r: CameraReport) -> bool:
    return r.connected and r.error is None and not r.frozen


@pytest.mark.parametrize(
    ("camera", "fault", "reasons"),
    [
        ("refuse", "rtsp_refuse", {StatusReason.RTSP_REFUSED, StatusReason.STREAM_STALLED}),
        ("stall", "rtsp_stall", {StatusReason.STREAM_STALLED, StatusReason.RTSP_TIMEOUT}),
        ("freeze", "freeze", {StatusReason.FROZEN_IMAGE}),
    ],
)
def test_simulator_fault_reported_and_recovered(cluster: Any, watch, camera: str, fault: str, reasons) -> None:
    """The injected fault shows as its typed reason within 15 s; after clearing, healthy again within 10 s."""
    reports = watch(camera)
    assert reports.wait_for(_healthy, 20), reports.values()[-3:]
    cluster.inject(camera, fault)
    t0 = time.monotonic()
    try:
        bad = reports.wait_for(lambda r: r.error in reasons, REPORT_WITHIN_S, after=t0)
        assert bad is not None, [(r.connected, r.error, r.frozen) for r in reports.values()[-5:]]
        if fault == "rtsp_refuse":  # the session in progress may end as a stall first; refusals must follow
            assert reports.wait_for(lambda r: r.error == StatusReason.RTSP_REFUSED, REPORT_WITHIN_S, after=t0)
    finally:
        cluster.clear(camera, fault)
    t1 = time.monotonic()
    assert reports.wait_for(_healthy, RECOVER_WITHIN_S, after=t1), [(r.connected, r.error, r.frozen)
                                                                     for r in reports.values()[-5:]]
