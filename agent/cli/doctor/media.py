"""The doctor's picture steps, which need PyAV (through agent.video) and the motion detector."""

from __future__ import annotations

from typing import Any

MAX_FRAMES = 40


def grab_frames(url: str, user: str | None, password: str | None, seconds: float, timeout: float) -> list[Any]:
    """Up to MAX_FRAMES luma planes (copies) read for `seconds`; raises agent.video's SourceError on failure."""
    import threading
    import time
    from urllib.parse import quote, urlsplit

    import numpy as np

    from agent.models import DecodeMode
    from agent.video.pyav import AvSource
    from agent.video.settings import SourceSettings

    if user:
        parts = urlsplit(url)
        netloc = f"{quote(user, safe='')}:{quote(password or '', safe='')}@{parts.netloc}"
        url = parts._replace(netloc=netloc).geturl()
    settings = SourceSettings(open_timeout_s=timeout, read_timeout_s=timeout, decode_mode=DecodeMode.FULL,
                              hardware_decoder=False)
    source = AvSource(url, settings)
    stop = threading.Event()
    frames: list[Any] = []
    deadline: float | None = None  # counted from the first frame: opening a stream may take seconds by itself
    for frame in source.frames(stop):
        frames.append(np.array(frame.y, copy=True))
        now = time.monotonic()
        deadline = deadline or now + seconds
        if len(frames) >= MAX_FRAMES or now >= deadline:
            stop.set()
            break
    return frames


def check_frames(cam: Any, seconds: float) -> tuple[Any, list[Any]]:
    from agent.health.checks import failed, passed, skipped
    from agent.i18n import N_

    title = N_("frames arrive")
    if not cam.stream_uri:
        return skipped("frames", title, N_("no stream address known")), []
    try:
        from agent.video.errors import SourceError
    except ImportError:  # PyAV is a hard dependency: without it the agent cannot watch any camera either
        return failed("frames", title, N_("the video module is not installed in this build"),
                      N_("Reinstall matthan-agent: its video package (PyAV) is missing, so the agent cannot read "
                         "any camera either.")), []
    import time

    start = time.monotonic()
    try:
        frames = grab_frames(cam.stream_uri, cam.user, cam.password, seconds, cam.timeout_s)
    except SourceError as exc:
        return failed("frames", title, N_("%(reason)s: %(error)s"),
                      N_("The stream opens but no picture could be read. Power-cycle the camera; if it persists, "
                         "choose H.264 (not H.265) for the substream in the camera's web page."),
                      reason=str(exc.reason), error=exc.message), []
    elapsed = max(time.monotonic() - start, 1e-3)  # includes opening the stream
    if len(frames) < 2:
        return failed("frames", title, N_("only %(n)d frame(s) in %(s).0f s"),
                      N_("The camera sends too few frames. Check its frame rate setting (at least 2 fps on the "
                         "substream) and the network link quality."), n=len(frames), s=elapsed), frames
    h, w = frames[-1].shape[:2]
    return passed("frames", title, N_("%(n)d frames in %(s).1f s, %(w)dx%(h)d"), n=len(frames), s=elapsed,
                  w=w, h=h), frames


def check_motion(frames: list[Any]) -> Any:
    """The detector runs on the real picture, stays quiet on a still copy of it, and sees a square moving over it."""
    from agent.health.checks import failed, passed, skipped
    from agent.i18n import N_

    title = N_("motion detector sane")
    if len(frames) < 2:
        return skipped("motion", title, N_("not enough frames"))
    import math

    from agent.motion import MotionDetector

    base = frames[-1]
    h, w = base.shape[:2]
    det = MotionDetector()
    ts = 0.0
    quiet = []
    for _ in range(15):  # 3 s of the same picture: the background is learned, nothing moves
        ts += 0.2
        quiet.append(det.step(base, ts))
    moved = []
    side = max(8, min(h, w) // 5)
    for i in range(10):  # a bright square crossing the picture
        ts += 0.2
        img = base.copy()
        x = int((w - side) * i / 9)
        y = (h - side) // 2
        img[y:y + side, x:x + side] = 255 - img[y:y + side, x:x + side] // 4 if img.mean() < 128 else 0
        moved.append(det.step(img, ts))
    if any(not math.isfinite(r.score) for r in quiet + moved):
        return failed("motion", title, N_("the detector returned an invalid score"),
                      N_("Report this to the developers with the output of this command."))
    if any(r.motion for r in quiet[8:]):
        return failed("motion", title, N_("motion reported on a still picture"),
                      N_("The picture is too noisy for the detector; check the camera's image (night noise, "
                         "a dirty lens) or lower the sensitivity."))
    if not any(r.motion for r in moved):
        return failed("motion", title, N_("a moving test object was not detected"),
                      N_("The detector (default settings) missed an object on this picture: it may be too dark "
                         "or washed out. Check the image; if it looks normal, report this to the developers with "
                         "the output of this command."))
    return passed("motion", title, N_("quiet on a still picture, detects a moving object"))


