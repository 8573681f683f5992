"""Every test here fails if a test password reaches a log record (see secret_scan.py); the RTSP doctor tests reuse
the video package's loopback RTSP server and clips."""

from tests.cli_tools.secret_scan import no_password_in_logs
from tests.video.conftest import (  # noqa: F401  (fixtures are found by name)
    clip_dir,
    fault_proxy,
    frozen_clip,
    live_clip,
    rtsp_server_for,
)

__all__ = ["no_password_in_logs"]
