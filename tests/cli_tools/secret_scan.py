"""The one list of passwords the tests hand to the code under test, and the scan that finds them in text.

tests/conftest.py scans every log record of every test with it (raw records, before the redacting formatter,
because redaction is a safety net, not a licence to log secrets); the station-side `Collector`
(tests/rig/broker.py) and the end-to-end tests scan what reached the station with it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from tests.rig.broker import DEFAULT_USERS, E2E_USERS

# Every distinctive password a test hands to the code under test. Left out on purpose: words too common to be a
# reliable signal ("wrong", "secret", "bad", "nope") and the values tests/test_logsetup.py logs on purpose to
# check the redacting formatter.
TEST_PASSWORDS = frozenset({
    "cam-secret-Xy7", "wrong-pass-99", "not-it-123", "secretpw", "reset-by-someone-9", "changed-by-reset-42",
    "matthan123",  # the simulator's default camera password
    "mat-khau-moi-9",  # tests/e2e: the camera reset by a villager
    "doi-mat-khau",  # tests/simulator: a password change fault
    "not-what-the-agent-has",  # tests/discovery: a camera whose password the agent lacks
    "abc123456",  # tests/discovery: credentials on the command line
    "Tan-Phu-2026!secret",  # tests/config: password, password_file and password_env
    "abcd1234",  # tests/config: the effective configuration
    "pw-1234",  # tests/app: ONVIF alarm credentials
    "right-one-1", "right-one-2", "the-right-one-3",  # tests/camera, tests/discovery: login budgets
    "hunter2",  # tests/video: HTTP snapshot credentials
    "not-the-password",  # tests/rig: a wrong broker password
    *DEFAULT_USERS.values(),  # the `auth` broker variant (tests/rig, tests/mqtt)
    *E2E_USERS.values(),  # the end-to-end broker
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


def find_leaks_in_bytes(blobs: Iterable[tuple[str, bytes]],
                        secrets: Iterable[str] = TEST_PASSWORDS) -> list[tuple[str, str]]:
    """(secret, where) for every (where, payload) whose bytes contain a secret in UTF-8."""
    encoded = [(s, s.encode()) for s in secrets]
    return [(s, where) for where, blob in blobs for s, raw in encoded if raw in blob]
