"""The RTSP doctor tests reuse the video package's loopback RTSP server and clips (the password scan of every log
record runs for the whole suite, from tests/conftest.py; its password list is secret_scan.py)."""

from tests.video.conftest import (  # noqa: F401  (fixtures are found by name)
    clip_dir,
    fault_proxy,
    frozen_clip,
    live_clip,
    rtsp_server_for,
)
