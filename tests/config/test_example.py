"""The shipped example is valid, plausible, and what check-config reports for it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import AgentConfig, load_config
from agent.logsetup import SecretRegistry

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "agent.example.yaml"


@pytest.fixture(scope="module")
def example() -> AgentConfig:
    return load_config(EXAMPLE, registry=SecretRegistry())


def test_example_passes_check_config_subprocess() -> None:
    """`python -m agent check-config config/agent.example.yaml` exits 0 with a one-line summary."""
    result = subprocess.run(
        [sys.executable, "-m", "agent", "check-config", str(EXAMPLE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "OK: 2 cameras configured" in result.stdout
    assert "topic prefix matthan/v1/xa-tan-phu/pi-ubnd" in result.stdout


def test_example_describes_tan_phu(example: AgentConfig) -> None:
    """The example is the commune xa-tan-phu with the market and crossroads cameras, each with a mask and zones."""
    assert example.site_id == "xa-tan-phu"
    names = [c.name for c in example.cameras]
    assert names == ["cho", "nga-ba"]
    for camera in example.cameras:
        assert camera.masks and camera.zones


def test_example_shows_every_key() -> None:
    """Every key of every section appears in the example, written or commented."""
    from agent.config.reference import _sections

    text = EXAMPLE.read_text(encoding="utf-8")
    missing = [
        f"{path}.{key}" if path else key
        for path, model in _sections("", AgentConfig)
        for key in model.model_fields
        if f"{key}:" not in text
    ]
    assert missing == []
