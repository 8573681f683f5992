"""Which file check-config reads, and what it prints for a valid one."""

from __future__ import annotations

from agent.cli import main
from tests.config.conftest import MINIMAL


def test_check_config_valid_prints_summary(write_config, check_config) -> None:
    """A valid file exits 0 with cameras, broker and prefix on one line."""
    result = check_config(write_config(MINIMAL + "cameras:\n  - name: cho\n"))
    assert result.code == 0, result.err
    assert "OK: 1 camera configured, broker 127.0.0.1:1883, topic prefix matthan/v1/xa-tan-phu/pi-test" in result.out


def test_check_config_falls_back_to_global_option(write_config, capsys) -> None:
    """Without FILE, the global --config option is used."""
    path = write_config(MINIMAL)
    assert main(["--config", str(path), "check-config"]) == 0
    assert str(path) in capsys.readouterr().out


def test_check_config_falls_back_to_env(write_config, check_config, monkeypatch) -> None:
    """Without FILE or --config, MATTHAN_CONFIG names the file."""
    path = write_config("site_id: [\n", name="env.yaml")
    monkeypatch.setenv("MATTHAN_CONFIG", str(path))
    result = check_config()
    assert result.code == 78
    assert str(path) in result.err


def test_check_config_default_path(check_config, monkeypatch) -> None:
    """With nothing given, the system path is checked (and reported missing here, not crashed on)."""
    monkeypatch.delenv("MATTHAN_CONFIG", raising=False)
    result = check_config()
    assert result.code in (0, 78)
    assert "/etc/matthan-agent/agent.yaml" in result.out + result.err
