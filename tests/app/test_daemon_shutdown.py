"""The shutdown budget: one deadline from the moment the stop begins, shared by the stages in turn, so a stage that
overruns cannot push the daemon past systemd's stop timeout nor starve the explicit `offline`."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from agent.app.shutdown import CLIENT_RESERVE_S, RELAY_RESERVE_S, SHUTDOWN_BUDGET_S, StopBudget
from tests.app.daemon_rig import PREFIX, UP_DEADLINE_S, make_daemon, wait_until
from tests.rig.broker import Broker, Collector

TEST_BUDGET_S = 2.0  # short, and below the old fixed 3 s share of the threads alone; the arithmetic is as with 9 s
SLACK_S = 0.5  # thread scheduling and socket teardown on a shared 2-core box


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_stop_budget_stages_share_one_deadline() -> None:
    """Each stage gets what is left less the reserve for later stages; never negative; start() keeps the first."""
    clock = FakeClock()
    b = StopBudget(9.0, clock=clock)
    assert not b.started
    b.start()
    clock.t += 6.0  # the workers took their 6 s
    b.start()  # a second start does not move the deadline
    assert b.left(RELAY_RESERVE_S + CLIENT_RESERVE_S) == pytest.approx(3.0 - RELAY_RESERVE_S - CLIENT_RESERVE_S)
    clock.t += 2.5
    assert b.left(CLIENT_RESERVE_S) == 0.0 and b.left() == pytest.approx(0.5)
    clock.t += 5.0
    assert b.left() == 0.0
    assert SHUTDOWN_BUDGET_S < 10.0  # systemd's stop budget for the agent
    with pytest.raises(ValueError):
        StopBudget(0)


def _stuck_thread(release: threading.Event) -> threading.Thread:
    t = threading.Thread(target=release.wait, args=(30.0,), name="stuck", daemon=True)  # 30 s: never forever
    t.start()
    return t


@pytest.mark.broker
def test_daemon_shutdown_stuck_thread_still_says_offline_in_budget(broker: Broker, tmp_path: Path) -> None:
    """A thread that ignores stop uses its share; the relay and client still stop and `offline` still arrives,
    all within the budget."""
    d = make_daemon(broker, tmp_path)
    d.stop_budget = StopBudget(TEST_BUDGET_S)
    status = Collector(broker, f"{PREFIX}/status")
    release = threading.Event()
    try:
        threads = d.start_services()
        wait_until(lambda: d.client.connected and d.relay.stats()["connected"], UP_DEADLINE_S, "the link")
        session = d.client.session
        assert session
        threads.append(_stuck_thread(release))
        t0 = time.monotonic()
        d.begin_stop()
        d._shutdown(threads)
        elapsed = time.monotonic() - t0
        assert elapsed <= TEST_BUDGET_S + SLACK_S, elapsed
        assert not d.relay.alive and not d.client.alive
        def said_offline(msgs: list[object]) -> bool:
            docs = [json.loads(x.payload) for x in msgs]  # type: ignore[attr-defined]
            return any(doc["state"] == "offline" and doc["session"] == session for doc in docs)

        assert status.wait_for(said_offline, 10)
    finally:
        release.set()
        status.close()


@pytest.mark.broker
def test_daemon_shutdown_hung_broker_within_budget(broker: Broker, tmp_path: Path) -> None:
    """With a frozen broker (no PUBACK ever) and a stuck thread, the whole shutdown still ends within the budget."""
    d = make_daemon(broker, tmp_path)
    d.stop_budget = StopBudget(TEST_BUDGET_S)
    release = threading.Event()
    try:
        threads = d.start_services()
        wait_until(lambda: d.client.connected and d.relay.stats()["connected"], UP_DEADLINE_S, "the link")
        threads.append(_stuck_thread(release))
        broker.hang()
        t0 = time.monotonic()
        d.begin_stop()
        d._shutdown(threads)
        elapsed = time.monotonic() - t0
        assert elapsed <= TEST_BUDGET_S + SLACK_S, elapsed
        assert not d.relay.alive
    finally:
        release.set()
        broker.resume()
