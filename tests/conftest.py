"""Fixtures shared by every test package.

The rig's fixtures live in tests/rig/: a real Mosquitto broker (broker.py) and private network namespaces
(netns.py). They are plugins so that each rig module stays small and owned by one concern.

Two guards run around every test of the suite:
- the network guard (tests/rig/netguard.py): a connect or send from the test process to anything but loopback,
  made by a thread in the namespace pytest started in, is blocked before it happens and fails the test;
- the password scan (tests/cli_tools/secret_scan.py): a known test password in any log record the test produced
  fails the test.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rig import netguard

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

pytest_plugins = ["tests.rig.broker", "tests.rig.netns"]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real clips in ../shared/data (never committed into the project)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared clips not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def _network_guard_session() -> Iterator[None]:
    """Turn the network guard on for the whole run; what a session-scoped teardown did is checked at the end.

    Child processes do not run the audit hook (it lives in this interpreter only): the agent, brokers and RTSP
    servers the tests start are kept off the network by loopback binds and the tests' own namespaces."""
    netguard.install()
    yield
    netguard.deactivate()
    late = netguard.take_violations()
    if late:
        pytest.fail(f"traffic off loopback from the root network namespace after the last test: {late[:3]}")


@pytest.fixture(autouse=True)
def _network_guard(_network_guard_session: None) -> Iterator[None]:
    """Fail the test during which a non-loopback connect/send was attempted, even if the code swallowed the
    exception the guard raised (a background thread of an earlier test would be blamed here: see the thread)."""
    yield
    violations = netguard.take_violations()
    if violations:
        pytest.fail("traffic off loopback from the root network namespace was blocked: "
                    + "; ".join(str(v) for v in violations[:3]))


@pytest.fixture(autouse=True)
def no_password_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail the test if a known test password (secret_scan.TEST_PASSWORDS) reaches any log record it produced.
    Records are scanned raw, before the redacting formatter: redaction is a safety net, not a licence to log."""
    # Imported here: secret_scan imports the broker plugin, which pytest must import first to rewrite its asserts.
    from tests.cli_tools.secret_scan import find_leaks, record_text

    caplog.set_level(logging.DEBUG)
    yield
    # caplog.records holds only the current phase (teardown); the setup and call phases are kept apart.
    records = [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records]
    leaks = find_leaks(record_text(r) for r in records)
    if leaks:
        pytest.fail(f"a password reached a log record: {leaks[:3]}")


@pytest.fixture(autouse=True)
def _drop_agent_log_handlers() -> Iterator[None]:
    """A test that runs the CLI in-process installs the agent's stderr handler on pytest's captured stream of
    that test; remove it afterwards, or later threads log into a closed file."""
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_matthan", False):
            root.removeHandler(handler)
