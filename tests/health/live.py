"""A camera pipeline feeding a status board, as the daemon wires them, and a station that records what is published."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from agent.camera import CameraPipeline, PipelineSettings
from agent.health.board import StatusBoard
from agent.models import CameraStatus, DecodeMode
from agent.video import SourceSettings

TICK_S = 0.5  # the daemon ticks the board every second; twice as often here costs nothing


class Station:
    """What a station subscriber would receive: every status the board publishes, with its arrival time."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.published: list[tuple[float, CameraStatus]] = []

    def publish(self, status: CameraStatus | None) -> None:
        if status is not None:
            with self.cond:
                self.published.append((time.monotonic(), status))
                self.cond.notify_all()

    def wait_for(self, pred: Callable[[CameraStatus], bool], timeout: float, after: float) -> float | None:
        """Seconds after `after` at which a matching status was published, or None."""
        def hit() -> float | None:
            return next((t - after for t, s in self.published if t >= after and pred(s)), None)

        with self.cond:
            self.cond.wait_for(lambda: hit() is not None, timeout)
            return hit()


@pytest.fixture
def live_board() -> Iterator[Callable[[str, DecodeMode], Station]]:
    stops: list[tuple[threading.Event, list[threading.Thread]]] = []

    def start(url: str, mode: DecodeMode = DecodeMode.ADAPTIVE) -> Station:
        board, station, stop = StatusBoard(), Station(), threading.Event()
        station.publish(board.add("cam-dinh"))
        # The pipeline's default report interval (5 s): the timing budgets must hold with it.
        settings = PipelineSettings("cam-dinh", url, source=SourceSettings(decode_mode=mode))
        pipeline = CameraPipeline(settings, on_event=lambda e: None,
                                  on_report=lambda r: station.publish(board.observe(r)))

        def ticker() -> None:
            while not stop.wait(TICK_S):
                for s in board.tick():
                    station.publish(s)

        threads = [threading.Thread(target=pipeline.run, args=(stop,), daemon=True),
                   threading.Thread(target=ticker, daemon=True)]
        for t in threads:
            t.start()
        stops.append((stop, threads))
        return station

    yield start
    for stop, threads in stops:
        stop.set()
        for t in threads:
            t.join(15)


