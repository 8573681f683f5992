"""The camera tests reuse the video fixtures: rendered clips, the loopback RTSP server and the fault proxy."""

from tests.video.conftest import (  # noqa: F401  (fixtures are found by name)
    clip_dir,
    crossing_clip,
    fault_proxy,
    frozen_clip,
    live_clip,
    rtsp_server_for,
    thawing_clip,
)
