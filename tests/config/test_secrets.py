"""Passwords from files and variables: resolved at load, never shown in reprs or logs, exposed files warned about."""

from __future__ import annotations

import io
import logging

from agent.config import load_config
from agent.logsetup import RedactingFormatter, SecretRegistry
from tests.config.conftest import MINIMAL

PASSWORD = "Tan-Phu-2026!secret"


def test_secrets_password_file_is_read(write_config, tmp_path) -> None:
    """password_file is read at load, relative to the config's directory, trailing newline dropped."""
    (tmp_path / "mqtt.pass").write_text(PASSWORD + "\n")
    (tmp_path / "mqtt.pass").chmod(0o600)
    cfg = load_config(write_config(MINIMAL + "  username: xa\n  password_file: mqtt.pass\n"), registry=SecretRegistry())
    assert cfg.mqtt.secret() == PASSWORD


def test_secrets_password_env_is_read(write_config, monkeypatch) -> None:
    """password_env takes the variable's value at load time."""
    monkeypatch.setenv("MATTHAN_TEST_MQTT_PW", PASSWORD)
    cfg = load_config(write_config(MINIMAL + "  password_env: MATTHAN_TEST_MQTT_PW\n"), registry=SecretRegistry())
    assert cfg.mqtt.secret() == PASSWORD


def test_secrets_world_readable_file_warns(write_config, tmp_path, caplog) -> None:
    """A password file readable by others draws a WARNING naming the file and the fix, not an error."""
    secret = tmp_path / "cam.pass"
    secret.write_text(PASSWORD)
    secret.chmod(0o644)
    text = MINIMAL + f"discovery:\n  credentials:\n    - username: admin\n      password_file: {secret}\n"
    with caplog.at_level(logging.WARNING, logger="agent.config"):
        cfg = load_config(write_config(text), registry=SecretRegistry())
    assert cfg.discovery.credentials[0].secret() == PASSWORD
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(secret) in w and "chmod 600" in w for w in warnings), warnings
    assert not any(PASSWORD in w for w in warnings)


def test_secrets_private_file_does_not_warn(write_config, tmp_path, caplog) -> None:
    """A mode 600 password file in a mode 600 config draws no warning."""
    secret = tmp_path / "cam.pass"
    secret.write_text(PASSWORD)
    secret.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="agent.config"):
        load_config(write_config(MINIMAL + f"  password_file: {secret}\n"), registry=SecretRegistry())
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_secrets_inline_password_in_readable_config_warns(write_config, caplog) -> None:
    """A plain password in a config file others can read draws a warning."""
    path = write_config(MINIMAL + f"  password: '{PASSWORD}'\n")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="agent.config"):
        load_config(path, registry=SecretRegistry())
    assert any("readable by group or others" in r.getMessage() for r in caplog.records)


def test_secrets_masked_in_repr_and_dump(write_config, tmp_path, monkeypatch) -> None:
    """No repr, str or JSON dump of the config reveals any password, whatever its source."""
    (tmp_path / "cam.pass").write_text("file-" + PASSWORD)
    (tmp_path / "cam.pass").chmod(0o600)
    monkeypatch.setenv("MATTHAN_TEST_CAM_PW", "env-" + PASSWORD)
    text = (
        MINIMAL
        + f"  password: '{PASSWORD}'\n"
        + "discovery:\n  credentials:\n"
        + "    - {username: admin, password_file: cam.pass}\n"
        + "    - {username: admin, password_env: MATTHAN_TEST_CAM_PW}\n"
        + "cameras:\n  - name: cho\n    credentials: {username: admin, password: 'cam-" + PASSWORD + "'}\n"
    )
    cfg = load_config(write_config(text), registry=SecretRegistry())
    for shown in (repr(cfg), str(cfg), cfg.model_dump_json(), repr(cfg.mqtt), repr(cfg.discovery.credentials)):
        assert PASSWORD not in shown
    assert cfg.cameras[0].credentials is not None
    assert cfg.cameras[0].credentials.secret() == "cam-" + PASSWORD


def test_secrets_registered_and_masked_in_logs(write_config, monkeypatch) -> None:
    """Every loaded password (also one inside a camera URL) is registered, so a log line never shows it."""
    monkeypatch.setenv("MATTHAN_TEST_MQTT_PW", PASSWORD)
    text = (
        MINIMAL
        + "  password_env: MATTHAN_TEST_MQTT_PW\n"
        + "cameras:\n  - name: nga-ba\n    url: rtsp://admin:urlpass99@10.0.0.7/s\n"
    )
    registry = SecretRegistry()
    load_config(write_config(text), registry=registry)
    assert {PASSWORD, "urlpass99"} <= registry.snapshot()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(message)s", registry))
    logger = logging.getLogger("tests.config.secrets")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("broker refused login with %s; camera said %s", PASSWORD, "bad urlpass99 here")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    assert PASSWORD not in stream.getvalue()
    assert "urlpass99" not in stream.getvalue()
    assert "***" in stream.getvalue()
