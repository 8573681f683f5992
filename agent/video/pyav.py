"""RTSP streams and video files through PyAV (FFmpeg), with decode modes and hardware decoding when present.

PyAV, not cv2.VideoCapture: OpenCV 5's capture dies with a bus error inside FFmpeg on a corrupt AVI that PyAV
decodes; PyAV can skip non-keyframes (about 12x less CPU on a 2 s GOP); and it exposes the decoded planes, so the
Y plane is read in place instead of converting every frame to grey.

Timestamps: for live streams a frame's `ts` is the wall clock at arrival, carried forward by the stream's own
presentation times so that frame spacing is exact. Cheap cameras' RTCP sender clocks drift by minutes and most
never sync NTP, so arrival time is the better estimate of capture time (off by the network and decoder latency,
well under a second on a LAN). For files, `ts` is `start_ts` plus the frame's
presentation time.

Hardware decoding: FFmpeg's V4L2 memory-to-memory decoders (`h264_v4l2m2m`) are used when the codec is in PyAV's
build *and* the kernel lists a video4linux node whose name says it decodes (the Raspberry Pi 4's
`bcm2835-codec-decode` at /dev/video10). PyAV's wheels list the codec everywhere and a webcam or capture card is a
/dev/video* node too, so neither alone means a decoder. A hardware decoder that will not open, keeps failing to
decode, or delivers no picture is given up on for that stream (`HardwareMemory`, which the worker keeps per camera
for the life of the process): every later session of the stream decodes in software, and the switch is logged once.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import av

from agent.models import DecodeMode
from agent.video.errors import DecodeError, SourceError, Stalled, classify, mask_uri
from agent.video.frame import Frame
from agent.video.settings import SourceSettings

log = logging.getLogger(__name__)

LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
HW_DECODERS = {"h264": "h264_v4l2m2m", "hevc": "hevc_v4l2m2m"}  # the Raspberry Pi 4's stateful V4L2 decoders
PROBE_US = 500_000  # µs of a live stream FFmpeg may read before the first frame (default 5 s)
PROBE_BYTES = 500_000  # bytes, likewise
MAX_LAG_S = 3.0  # s; a stamp this far behind the wall clock means the stream clock jumped: re-anchor
MAX_BAD_PACKETS = 50  # consecutive undecodable packets before the stream counts as broken
AV_ERRORS = (av.FFmpegError, OSError, ValueError)  # what FFmpeg raises through PyAV; ValueError is InvalidData's base
V4L2_SYSFS = "/sys/class/video4linux"  # one directory per video4linux node, each with a `name` file
DEV_DIR = "/dev"  # where those nodes appear
# A node counts as a decoder when a whole word of its kernel name is one of these: bcm2835-codec-decode (Raspberry
# Pi 4), meson-vdec (Amlogic), qcom-venus-decoder, s5p-mfc-dec (Exynos), mtk-vcodec-dec. Cameras, ISPs and encoders
# (bcm2835-codec-encode: "codec" is not a word match) are left out, and so are stateless decoders such as rkvdec,
# which the stateful v4l2m2m codec cannot drive. A node that matches but does not work is caught by the fallback.
DECODER_WORDS = frozenset({"dec", "decode", "decoder", "vdec"})
HW_SILENT_S = 10.0  # s a hardware decoder may be fed without a picture out: over v4l2m2m's few-frame latency even
# at keyframe-only rate (2 s GOP), under the supervisor's 30 s hang timeout, so the fallback comes before a kill



class HardwareMemory:
    """Which streams' hardware decoding has failed, so that later sessions of a stream decode in software.

    Sessions are separate `AvSource` objects (one per connection attempt), so the memory lives outside them: the
    worker keeps one per camera for the life of the process. Thread-safe; bounded by the streams it is given."""

    def __init__(self) -> None:
        self._failed: set[str] = set()
        self._lock = threading.Lock()

    def failed(self, uri: str) -> bool:
        with self._lock:
            return uri in self._failed

    def give_up(self, uri: str, name: str, why: str) -> None:
        with self._lock:
            first = uri not in self._failed
            self._failed.add(uri)
        if first:
            log.warning("%s: hardware decoder %s %s; decoding this stream in software from now on", mask_uri(uri),
                        name, why)


def v4l2_decoder_nodes() -> list[str]:
    """Device paths of video4linux nodes whose kernel name says they decode (read from sysfs; cheap)."""
    try:
        entries = sorted(os.listdir(V4L2_SYSFS))
    except OSError:
        return []
    nodes = []
    for entry in entries:
        try:
            with open(os.path.join(V4L2_SYSFS, entry, "name"), encoding="utf-8", errors="replace") as fh:
                name = fh.read().strip().lower()
        except OSError:
            continue
        device = os.path.join(DEV_DIR, entry)
        if DECODER_WORDS & set(re.split(r"[^a-z0-9]+", name)) and os.path.exists(device):
            nodes.append(device)
    return nodes


def hardware_decoder_available(codec: str) -> str | None:
    """The V4L2 memory-to-memory decoder for `codec` if FFmpeg has it and the kernel has a decoder node for it."""
    name = HW_DECODERS.get(codec)
    if name is None or name not in av.codecs_available or not v4l2_decoder_nodes():
        return None
    return name


class AvSource:
    """One camera stream or video file. Each `frames()` call is one connection attempt, raising `SourceError`."""

    def __init__(self, uri: str, settings: SourceSettings | None = None, *, start_ts: float = 0.0,
                 hardware_memory: HardwareMemory | None = None) -> None:
        self.uri = uri
        self.hardware_memory = hardware_memory if hardware_memory is not None else HardwareMemory()
        self.settings = settings or SourceSettings()
        self.live = uri.startswith(LIVE_SCHEMES)
        self.start_ts = start_ts
        # Adaptive starts quiet (keyframes only); `set_keyframes_only` is called from the pipeline thread.
        self._want_keyframes = self.settings.decode_mode != DecodeMode.FULL
        self._keyframes = self._want_keyframes
        self.packets_in = 0
        self.frames_decoded = 0
        self.bad_packets = 0
        self.decode_s = 0.0  # wall time spent inside the decoder, for replay's summary and the bench
        self.hardware: str | None = None
        self._anchor: float | None = None  # wall clock minus stream time, for live timestamps
        self._last_pts = 0.0
        self._time_base: float | None = None  # s per pts tick of the decoded frames, read from the first one
        self._count_time = False  # stamp file frames by their index (containers without presentation times)

    @property
    def keyframes_only(self) -> bool:
        return self._keyframes

    def set_keyframes_only(self, on: bool) -> None:
        """Ask for keyframe-only (True) or full decoding; full starts at the next keyframe, so no frame is smeared."""
        self._want_keyframes = on

    def describe(self) -> str:
        return mask_uri(self.uri)

    def _open(self) -> Any:
        s = self.settings
        options: dict[str, str] = {}
        if self.live:
            # FFmpeg probes 5 s of a live stream by default and then releases it in one burst; cameras announce
            # their parameters in the SDP, so half a second is plenty and frames arrive at their real pace.
            options = {"analyzeduration": str(PROBE_US), "probesize": str(PROBE_BYTES)}
        if self.uri.startswith("rtsp"):
            options["rtsp_transport"] = s.rtsp_transport
        started = time.monotonic()
        try:
            return av.open(self.uri, options=options, timeout=(s.open_timeout_s, s.read_timeout_s))
        except AV_ERRORS as exc:
            raise classify(exc, self.uri, opening=True, elapsed_s=time.monotonic() - started,
                           timeout_s=s.open_timeout_s) from None

    def _decoder(self, stream: Any) -> Any:
        ctx = stream.codec_context
        # Many cameras per core: slice threads only (frame threads add a frame of delay per thread, which would
        # also break adaptive mode's switch right after a keyframe); a file in full mode (replay) may use them.
        full_file = not self.live and self.settings.decode_mode == DecodeMode.FULL
        ctx.thread_type = "AUTO" if full_file else "SLICE"
        if not full_file:
            # One thread per decoder: a 640x360 substream gains nothing from more, and FFmpeg's default (one per
            # core, plus one) gives a Pi carrying 16 cameras some 80 idle decoder threads to schedule.
            ctx.thread_count = 1
        self.hardware = None
        if not self.settings.hardware_decoder or self.hardware_memory.failed(self.uri):
            return ctx
        name = hardware_decoder_available(ctx.name)
        if name is not None:
            try:
                hw = av.CodecContext.create(name, "r")
                if ctx.extradata:
                    hw.extradata = ctx.extradata
                hw.open()
            except AV_ERRORS as exc:
                self.hardware_memory.give_up(self.uri, name, f"would not open ({type(exc).__name__})")
                return ctx
            self.hardware = name
            log.info("%s: using hardware decoder %s", self.describe(), name)
            return hw
        return ctx

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        """Open, then yield frames until the end (files), `stop`, or an error (raised as `SourceError`)."""
        container = self._open()
        started = time.monotonic()
        try:
            if not container.streams.video:
                raise DecodeError(f"{self.describe()}: no video stream in this source")
            stream = container.streams.video[0]
            decoder = self._decoder(stream)
            rate = stream.average_rate or stream.guessed_rate
            period = 1.0 / float(rate) if rate else 0.2
            # AVI stores no presentation times (packed B-frames come out with decode-order stamps): count frames.
            self._count_time = not self.live and "avi" in container.format.name.split(",")
            yield from self._decode_loop(container, stream, decoder, period, stop)
        except SourceError:
            raise
        except AV_ERRORS as exc:
            raise classify(exc, self.uri, opening=False, elapsed_s=time.monotonic() - started,
                           timeout_s=self.settings.read_timeout_s) from None
        finally:
            container.close()

    def _decode_loop(self, container: Any, stream: Any, decoder: Any, period: float,
                     stop: threading.Event | None) -> Iterator[Frame]:
        last_read = time.monotonic()
        skipped = True  # no keyframe decoded yet
        silent_since: float | None = None  # when the hardware decoder was first fed since its last picture
        live, slow_gap = self.live, self.settings.read_timeout_s * 2
        for packet in container.demux(stream):
            if stop is not None and stop.is_set():
                return
            if packet.size == 0:
                continue  # the flush packet at the end of a file
            now = time.monotonic()
            if live and now - last_read > slow_gap:
                log.debug("%s: %.1f s between packets", self.describe(), now - last_read)
            last_read = now
            self.packets_in += 1
            key = bool(packet.is_keyframe)
            # To full decoding: at once if nothing was skipped since the last decoded keyframe (the pipeline
            # decides right after analysing it, so every reference is in the decoder), else at the next keyframe.
            if self._want_keyframes != self._keyframes and (self._want_keyframes or key or not skipped):
                self._keyframes = self._want_keyframes
                if decoder is stream.codec_context:
                    decoder.skip_frame = "NONKEY" if self._keyframes else "DEFAULT"
            if self._keyframes and not key:
                skipped = True
                continue  # not even handed to the decoder: demuxing is then the whole cost
            skipped = False
            t0 = time.perf_counter()
            try:
                decoded = decoder.decode(packet)
            except AV_ERRORS:
                self.bad_packets += 1
                if self.bad_packets >= MAX_BAD_PACKETS:
                    self._hardware_broken(f"failed on {self.bad_packets} packets in a row")
                    raise DecodeError(f"{self.describe()}: {self.bad_packets} packets could not be decoded") from None
                continue
            self.decode_s += time.perf_counter() - t0
            if self.hardware is not None:
                if decoded:
                    silent_since = None
                elif silent_since is None:
                    silent_since = now
                elif now - silent_since > HW_SILENT_S:
                    self._hardware_broken(f"gave no picture for {HW_SILENT_S:.0f} s")
                    raise DecodeError(f"{self.describe()}: the hardware decoder {self.hardware} gives no pictures")
            for f in decoded:
                self.bad_packets = 0
                yield self._frame(f, period)
        if self.live:
            raise Stalled(f"{self.describe()}: the camera ended the stream")
        # Frames still inside the decoder at the end of a file (B-frames, threading).
        try:
            rest = decoder.decode(None)
        except AV_ERRORS:
            rest = []
        for f in rest:
            yield self._frame(f, period)

    def _hardware_broken(self, why: str) -> None:
        """Remember that this stream's hardware decoder failed, so the next session decodes in software."""
        if self.hardware is not None:
            self.hardware_memory.give_up(self.uri, self.hardware, why)

    def _live_ts(self, pts_time: float) -> float:
        """Wall clock anchored on the stream's own clock: frame spacing survives decoder and scheduling jitter,
        and the anchor is moved whenever a stamp would lie in the future or lag by more than MAX_LAG_S."""
        now = time.time()
        ts = now if self._anchor is None else self._anchor + pts_time
        if ts > now or ts < now - MAX_LAG_S:
            self._anchor, ts = now - pts_time, now
        return ts

    def _frame(self, f: Any, period: float) -> Frame:
        # Lean on purpose: this runs for every decoded frame, also the two in three that full mode never analyses.
        # Hence the time base read once (`f.time` builds a Fraction per call) and the luma view left to `Frame`.
        index = self.frames_decoded
        self.frames_decoded = index + 1
        pts = None if self._count_time else f.pts
        if pts is not None and self._time_base is None:
            self._time_base = float(f.time_base or 0.0)
        pts_time = pts * self._time_base if pts is not None and self._time_base else None
        if pts_time is None or not math.isfinite(pts_time):
            # The first RTSP frame and frames flushed at the end of a file carry no time.
            pts_time = index * period if not self.live else self._last_pts + period
        self._last_pts = pts_time
        ts = self._live_ts(pts_time) if self.live else self.start_ts + pts_time
        # The frame's own flag: with frame threads the packet just sent is not the picture coming out.
        return Frame(ts=ts, index=index, keyframe=bool(f.key_frame), image=f)
