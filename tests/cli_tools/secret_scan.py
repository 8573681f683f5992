"""A scan of every log record a test produced for the passwords the tests use (the lead extends it to the run).

Used as an autouse fixture by tests/health, tests/commands and tests/cli_tools. Records are scanned raw — before
the redacting formatter — because redaction is a safety net, not a licence to log secrets.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import pytest

from tests.rig.broker import DEFAULT_USERS

# Every password a test in these packages hands to the code under test.
TEST_PASSWORDS = frozenset({
    "cam-secret-Xy7", "wrong-pass-99", "not-it-123", "secretpw", "reset-by-someone-9", "changed-by-reset-42",
    "matthan123",  # the simulator's default camera password
    *DEFAULT_USERS.values(),
})


def record_text(record: logging.LogRecord) -> str:
    text = record.getMessage()
    if record.exc_info:
        text += "\n" + logging.Formatter().formatException(record.exc_info)
    if record.stack_info:
        text += "\n" + record.stack_info
    return text


def find_leaks(texts: Iterable[str], secrets: Iterable[str] = TEST_PASSWORDS) -> list[tuple[str, str]]:
    """(secret, excerpt) for every text that contains a secret."""
    leaks = []
    for text in texts:
        for secret in secrets:
            at = text.find(secret)
            if at >= 0:
                leaks.append((secret, text[max(0, at - 40): at + len(secret) + 40]))
    return leaks


@pytest.fixture(autouse=True)
def no_password_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    leaks = find_leaks(record_text(r) for r in caplog.records)
    if leaks:
        pytest.fail(f"a password reached a log record: {leaks[:3]}")
