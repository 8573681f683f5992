"""The password scan itself: it finds a leak wherever it hides in a record, and the test passwords are known."""

from __future__ import annotations

import logging

from tests.cli_tools.secret_scan import TEST_PASSWORDS, find_leaks, record_text


def test_secret_scan_finds_password_in_message_args_and_traceback() -> None:
    """A password in a %-argument or in an exception's traceback is found; clean text is not flagged."""
    pw = "cam-secret-Xy7"
    assert pw in TEST_PASSWORDS
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "opening %s", (f"rtsp://admin:{pw}@cam/s",), None)
    assert find_leaks([record_text(rec)])[0][0] == pw
    try:
        raise ValueError(f"bad url rtsp://u:{pw}@h")
    except ValueError:
        import sys

        exc = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert find_leaks([record_text(exc)])
    assert find_leaks(["rtsp://admin:***@cam/s", "all fine"]) == []


def test_secret_scan_commands_responses_clean() -> None:
    """Command responses built from hostile input never echo a password back (the validator omits inputs)."""
    import json

    from agent.commands import CommandDispatcher, CommandOps, encode_response

    d = CommandDispatcher(CommandOps(camera_ids=lambda: {"cho"}), clock=lambda: 0.0)
    payloads = [
        json.dumps({"req_id": "a", "args": {"camera": "cho", "password": "cam-secret-Xy7"}}).encode(),
        json.dumps({"req_id": "b", "password": "cam-secret-Xy7"}).encode(),
        json.dumps({"req_id": "c", "args": {"camera": "cam-secret-Xy7" * 10}}).encode(),
    ]
    wire = [encode_response(r).decode() for p in payloads if (r := d.handle("snapshot", p)) is not None]
    assert len(wire) == 3 and find_leaks(wire) == []
