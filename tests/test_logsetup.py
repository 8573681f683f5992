"""Logging: one formatter masks every password, and the journald format drops our own timestamp."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from agent.logsetup import MASK, SecretRegistry, camera_logger, redact, setup_logging


@pytest.mark.parametrize(
    ("raw", "secret"),
    [
        ("opening rtsp://admin:Hik12345@10.0.0.5:554/Streaming/Channels/102", "Hik12345"),
        ("GET http://user:p%40ss@198.18.0.11/onvif/snapshot failed", "p%40ss"),
        ("mqtts://station:s3cr3t!@broker.example:8883", "s3cr3t!"),
        ("config: password=hunter22 username=admin", "hunter22"),
        ('payload {"username": "admin", "password": "Dahua-2024"}', "Dahua-2024"),
        ("passwd: 'xyzzy99'", "xyzzy99"),
    ],
)
def test_redact_masks_credentials(raw: str, secret: str) -> None:
    """Credentials inside URIs and key=value pairs are replaced by the mask."""
    out = redact(raw)
    assert secret not in out
    assert MASK in out


def test_redact_keeps_user_and_host() -> None:
    """Only the password goes; the technician still sees which user and which camera."""
    out = redact("rtsp://admin:Hik12345@10.0.0.5:554/Streaming/Channels/102")
    assert out == "rtsp://admin:***@10.0.0.5:554/Streaming/Channels/102"


def test_redact_leaves_uri_without_password_alone() -> None:
    """A URI with no userinfo, or a user without a password, is unchanged."""
    for text in ("rtsp://10.0.0.5/live", "http://admin@10.0.0.5/x", "time 10:20:30@cam"):
        assert redact(text) == text


def test_redact_masks_registered_literal_secret() -> None:
    """A secret from the config is masked wherever it appears, even with no key name near it."""
    registry = SecretRegistry()
    registry.add(["Chợ-Mật-Khẩu-9", None, "ab"])
    assert redact("camera said Chợ-Mật-Khẩu-9 in an error", registry.snapshot()) == f"camera said {MASK} in an error"
    # two-character secrets are not registered: they would blank innocent text
    assert "ab" not in registry.snapshot()


def test_logging_masks_password_in_arguments_and_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    """A password passed as a log argument or quoted in an exception never reaches stderr."""
    registry = SecretRegistry()
    registry.add(["TopSecret77"])
    handler = setup_logging("DEBUG", registry)
    try:
        log = logging.getLogger("agent.test")
        log.info("connecting to %s", "rtsp://admin:TopSecret77@198.18.0.11/stream")
        try:
            raise ConnectionError("refused by http://admin:TopSecret77@198.18.0.11/onvif")
        except ConnectionError:
            log.exception("interrogation failed")
        log.warning("broker password is %s", "TopSecret77")
    finally:
        logging.getLogger().removeHandler(handler)
    err = capfd.readouterr().err
    assert "TopSecret77" not in err
    assert err.count(MASK) >= 3
    assert "ConnectionError" in err


def test_logging_camera_name_comes_first(caplog: pytest.LogCaptureFixture) -> None:
    """Per-camera lines start with the camera id so that grep finds them."""
    caplog.set_level(logging.INFO)
    camera_logger(logging.getLogger("agent.video"), "cho-dau-moi").info("stream opened at %d fps", 15)
    assert caplog.messages == ["[cho-dau-moi] stream opened at 15 fps"]


def test_logging_journald_format_has_no_timestamp() -> None:
    """Under systemd (JOURNAL_STREAM set) lines carry no timestamp of our own; journald adds one."""
    code = (
        "import logging; from agent.logsetup import setup_logging; setup_logging('INFO'); "
        "logging.getLogger('agent.x').info('hello')"
    )
    env = dict(os.environ, JOURNAL_STREAM="8:12345")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stderr.strip() == "INFO agent.x: hello"
    env.pop("JOURNAL_STREAM")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stderr.strip().endswith("INFO agent.x: hello")
    assert out.stderr.strip() != "INFO agent.x: hello"
