"""The credential budget kept in the state dir: it survives restarts, is shared by processes, and is written only
when a camera rejects a credential."""

from __future__ import annotations

import json
from pathlib import Path

from agent.discovery.auth_store import AUTH_BUDGET_FILE, FileAuthBudget, budget_for
from agent.discovery.inventory import Inventory
from agent.discovery.manager import DiscoveryManager
from agent.discovery.policy import AuthBudget, auth_key
from agent.discovery.results import Discovered, Via
from agent.discovery.settings import DiscoverySettings


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _fail(budget: AuthBudget, key: str) -> None:
    assert budget.take(key)
    budget.failed(key)


def test_auth_store_survives_a_restart(tmp_path: Path) -> None:
    """Three rejected attempts, then a new budget on the same file (a restart) allows none until the window ends."""
    clock = Clock()
    path = tmp_path / AUTH_BUDGET_FILE
    first = FileAuthBudget(path, 3, 600.0, clock=clock)
    for _ in range(3):
        _fail(first, "uuid:a")
        clock.now += 1.0
    restarted = FileAuthBudget(path, 3, 600.0, clock=clock)
    assert restarted.remaining("uuid:a") == 0 and not restarted.take("uuid:a")
    assert restarted.retry_after_s("uuid:a") == 597.0
    assert restarted.remaining("uuid:other") == 3
    clock.now += 597.0
    assert restarted.take("uuid:a")


def test_auth_store_no_write_in_the_steady_state(tmp_path: Path) -> None:
    """Attempts that succeed never create or touch the file; a success after rejections clears it once."""
    clock = Clock()
    path = tmp_path / AUTH_BUDGET_FILE
    budget = FileAuthBudget(path, clock=clock)
    for _ in range(20):
        assert budget.take("uuid:good")
        budget.succeeded("uuid:good")
    assert not path.exists()
    _fail(budget, "uuid:bad")
    written = path.stat()
    for _ in range(20):
        assert budget.take("uuid:good")
        budget.succeeded("uuid:good")
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    assert budget.take("uuid:bad")
    budget.succeeded("uuid:bad")
    assert json.loads(path.read_text())["cameras"] == {}


def test_auth_store_file_is_small_and_has_no_secret(tmp_path: Path) -> None:
    """The file holds keys and times only; expired entries are dropped when it is next written."""
    clock = Clock()
    path = tmp_path / AUTH_BUDGET_FILE
    budget = FileAuthBudget(path, 3, 600.0, clock=clock)
    _fail(budget, "uuid:old")
    clock.now += 601.0
    _fail(budget, "192.168.1.64:80")
    doc = json.loads(path.read_text())
    assert doc["version"] == 1 and doc["cameras"] == {"192.168.1.64:80": [clock.now]}
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_auth_store_shared_between_processes(tmp_path: Path) -> None:
    """A rejection recorded by `discover` counts for the running daemon, and neither write loses the other's."""
    clock = Clock()
    path = tmp_path / AUTH_BUDGET_FILE
    daemon = FileAuthBudget(path, 3, 600.0, clock=clock)
    cli = FileAuthBudget(path, 3, 600.0, clock=clock)
    _fail(daemon, "uuid:a")
    clock.now += 1.0
    _fail(cli, "uuid:a")
    clock.now += 1.0
    assert daemon.remaining("uuid:a") == 1
    _fail(daemon, "uuid:a")
    assert not cli.take("uuid:a")
    assert len(json.loads(path.read_text())["cameras"]["uuid:a"]) == 3


def test_auth_store_unreadable_file_starts_empty(tmp_path: Path) -> None:
    """A corrupt file does not stop discovery: the budget starts empty and the next rejection rewrites it."""
    path = tmp_path / AUTH_BUDGET_FILE
    path.write_text("{not json")
    budget = FileAuthBudget(path)
    assert budget.remaining("uuid:a") == 3
    _fail(budget, "uuid:a")
    assert list(json.loads(path.read_text())["cameras"]) == ["uuid:a"]


def test_auth_store_clock_set_back_still_counts(tmp_path: Path) -> None:
    """Times from the future (the clock was set back, e.g. before NTP) count as now, not as never expiring."""
    clock = Clock()
    path = tmp_path / AUTH_BUDGET_FILE
    budget = FileAuthBudget(path, 3, 600.0, clock=clock)
    for _ in range(3):
        _fail(budget, "uuid:a")
    clock.now -= 3600.0
    after_reboot = FileAuthBudget(path, 3, 600.0, clock=clock)
    assert not after_reboot.take("uuid:a")
    clock.now += 600.0
    assert after_reboot.take("uuid:a")


def test_auth_store_unwritable_dir_keeps_memory_budget(tmp_path: Path) -> None:
    """When the state dir cannot be written, the budget still holds in memory and the failure is counted."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    budget = FileAuthBudget(blocker / AUTH_BUDGET_FILE, 3, 600.0)
    for _ in range(3):
        _fail(budget, "uuid:a")
    assert budget.write_errors == 3 and not budget.take("uuid:a")


def test_auth_store_daemon_manager_keeps_budget_in_state_dir(tmp_path: Path) -> None:
    """The daemon's DiscoveryManager keeps its budget beside the inventory; without a path, in memory."""
    settings = DiscoverySettings()
    manager = DiscoveryManager(settings, Inventory(tmp_path / "inventory.json"), on_report=lambda r: None)
    assert isinstance(manager.budget, FileAuthBudget) and manager.budget.path == tmp_path / AUTH_BUDGET_FILE
    memory = DiscoveryManager(settings, Inventory(), on_report=lambda r: None)
    assert type(memory.budget) is AuthBudget
    assert type(budget_for(settings, None)) is AuthBudget


def test_auth_key_uuid_else_host_port() -> None:
    """A camera is counted by its endpoint uuid, else by the host:port of its device service."""
    with_uuid = Discovered(ip="10.0.0.5", xaddr="http://10.0.0.5/onvif/device_service", via=Via.MULTICAST,
                           endpoint_uuid="ABC-1")
    assert auth_key(with_uuid) == "uuid:abc-1"
    bare = Discovered(ip="10.0.0.5", xaddr="http://10.0.0.5/onvif/device_service", via=Via.TARGET)
    assert auth_key(bare) == "10.0.0.5:80"
    nvr = Discovered(ip="10.0.0.5", xaddr="http://10.0.0.5:8001/onvif/device_service", via=Via.SCAN)
    assert auth_key(nvr) == "10.0.0.5:8001"
