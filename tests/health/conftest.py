"""Every test here fails if a test password reaches a log record (see tests/cli_tools/secret_scan.py); the live
status tests reuse the video package's RTSP server, clips and fault proxy."""

from tests.cli_tools.secret_scan import no_password_in_logs
from tests.health.live import live_board
from tests.video.conftest import (  # noqa: F401  (fixtures are found by name)
    clip_dir,
    fault_proxy,
    frozen_clip,
    live_clip,
    rtsp_server_for,
)

__all__ = ["live_board", "no_password_in_logs"]
