"""The live status tests reuse the video package's RTSP server, clips and fault proxy (the password scan of every
log record runs for the whole suite, from tests/conftest.py)."""

from tests.health.live import live_board
from tests.video.conftest import (  # noqa: F401  (fixtures are found by name)
    clip_dir,
    fault_proxy,
    frozen_clip,
    live_clip,
    rtsp_server_for,
)

__all__ = ["live_board"]
