"""The RTSP doctor tests reuse the video package's loopback RTSP server and clips (the password scan of every log
record runs for the whole suite, from tests/conftest.py; its password list is secret_scan.py)."""

from pathlib import Path

import pytest

from tests.video.conftest import (  # noqa: F401  (fixtures are found by name)
    clip_dir,
    fault_proxy,
    frozen_clip,
    live_clip,
    rtsp_server_for,
)


@pytest.fixture
def english_no_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The CLI tools as a technician without a configuration file would run them, in English (the tests read the
    English messages; the Vietnamese ones have tests of their own)."""
    monkeypatch.setenv("MATTHAN_CONFIG", str(tmp_path / "no-such-config.yaml"))
    monkeypatch.setenv("LANG", "C.UTF-8")
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(var, raising=False)
