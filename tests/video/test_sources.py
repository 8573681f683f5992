"""Frame sources over files, image sequences and the corrupt clip; luma extraction; decode modes."""

from __future__ import annotations

import logging
import multiprocessing
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from agent.models import DecodeMode
from agent.video import DecodeError, NotFound, SourceSettings, luma, open_source, pyav
from agent.video.pyav import AvSource, HardwareMemory, hardware_decoder_available
from agent.video.sequence import BadPattern, ImageSequenceSource


def test_file_source_full_mode_yields_every_frame(crossing_clip: Path) -> None:
    """Full decoding yields all 300 frames with presentation timestamps and a Y plane of the stream's size."""
    source = open_source(str(crossing_clip), SourceSettings(decode_mode=DecodeMode.FULL), start_ts=1000.0)
    frames = list(source.frames())
    assert len(frames) == 300
    assert frames[0].y.shape == (360, 640) and frames[0].y.dtype == np.uint8
    assert frames[15].ts == pytest.approx(1001.0)
    assert frames[0].keyframe and not frames[1].keyframe
    assert all(np.isfinite(f.ts) for f in frames)


def test_file_source_keyframe_mode_decodes_only_keyframes(crossing_clip: Path) -> None:
    """Keyframe mode decodes one frame per GOP (2 s) but still demuxes every packet."""
    source = AvSource(str(crossing_clip), SourceSettings(decode_mode=DecodeMode.KEYFRAME))
    frames = list(source.frames())
    assert len(frames) == 10
    assert all(f.keyframe for f in frames)
    assert source.packets_in == 300
    assert [round(f.ts, 3) for f in frames[:3]] == [0.0, 2.0, 4.0]


def test_file_source_switches_to_full_right_after_keyframe(crossing_clip: Path) -> None:
    """Asking for full decoding right after a keyframe takes effect at the next packet, with clean pictures."""
    source = AvSource(str(crossing_clip), SourceSettings(decode_mode=DecodeMode.ADAPTIVE))
    it = source.frames()
    first = next(it)
    assert first.keyframe and source.keyframes_only
    source.set_keyframes_only(False)
    nxt = next(it)
    assert nxt.index == 1 and nxt.ts == pytest.approx(1 / 15)
    assert abs(float(nxt.y.mean()) - float(first.y.mean())) < 2.0  # not a smeared, reference-less picture
    source.set_keyframes_only(True)
    after = next(it)
    assert after.keyframe and after.ts == pytest.approx(2.0)
    it.close()


def test_luma_is_a_view_not_a_conversion(crossing_clip: Path) -> None:
    """The Y plane is read in place from the decoded frame (no copy) and equals the frame's luma plane."""
    with av.open(str(crossing_clip)) as container:
        frame = next(container.decode(video=0))
        y = luma(frame)
        assert not y.flags.owndata
        assert np.array_equal(y, frame.to_ndarray(format="yuv420p")[:360])


def test_frame_reads_its_luma_only_when_asked(crossing_clip: Path) -> None:
    """A source's frame holds the decoded picture and builds the Y view on first use (two frames in three are never
    analysed in full mode), then keeps it; a frame with neither plane nor picture is refused."""
    from agent.video import Frame

    source = AvSource(str(crossing_clip), SourceSettings(decode_mode=DecodeMode.FULL))
    frame = next(source.frames())
    assert frame._y is None and frame.image is not None
    y = frame.y
    assert frame.y is y and np.array_equal(y, frame.image.to_ndarray(format="yuv420p")[:360])
    assert Frame(y=y, ts=1.0).y is y
    with pytest.raises(ValueError):
        Frame(ts=1.0)


def _decode_corrupt(path: str, out: multiprocessing.Queue) -> None:
    source = open_source(path, SourceSettings(decode_mode=DecodeMode.FULL))
    out.put(sum(1 for _ in source.frames()))


def test_corrupt_clip_decodes_without_crashing(shared_data: Path) -> None:
    """The AVI that kills OpenCV's VideoCapture is decoded by the PyAV source in a child process that exits 0."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_decode_corrupt, args=(str(shared_data / "corrupt-crashes-opencv.avi"), out))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    assert out.get(timeout=5) == 51


def test_file_source_missing_file_is_not_found(tmp_path: Path) -> None:
    """A missing file raises NotFound with the path in plain words."""
    with pytest.raises(NotFound, match="no such file"):
        next(open_source(str(tmp_path / "nope.mp4")).frames())


def test_file_source_garbage_is_decode_error(tmp_path: Path) -> None:
    """A file that is not a video raises DecodeError, not an FFmpeg exception."""
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(DecodeError):
        next(open_source(str(junk)).frames())


def test_image_sequence_yields_frames_at_fps(tmp_path: Path) -> None:
    """An image sequence is read in order from index 1, stamped at the given fps, as grey frames."""
    for i in range(1, 6):
        cv2.imwrite(str(tmp_path / f"in{i:06d}.jpg"), np.full((90, 160, 3), 40 * i, np.uint8))
    source = open_source(str(tmp_path / "in%06d.jpg"), SourceSettings(sequence_fps=2.0))
    frames = list(source.frames())
    assert [f.ts for f in frames] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert frames[0].y.shape == (90, 160) and abs(int(frames[2].y.mean()) - 120) <= 2


@pytest.mark.parametrize("pattern", ["frames/in.jpg", "frames/%d_%d.jpg", "frames/in%s.jpg"])
def test_image_sequence_bad_pattern_rejected(pattern: str) -> None:
    """A pattern without exactly one printf counter is refused with an example of a good one."""
    with pytest.raises(BadPattern, match="%06d"):
        ImageSequenceSource(pattern)


def test_image_sequence_missing_folder_is_not_found(tmp_path: Path) -> None:
    """A pattern pointing at nothing says which folder or first file is missing."""
    with pytest.raises(NotFound, match="does not exist"):
        next(ImageSequenceSource(str(tmp_path / "nope" / "in%06d.jpg")).frames())
    with pytest.raises(NotFound, match="no image"):
        next(ImageSequenceSource(str(tmp_path / "in%06d.jpg")).frames())


def test_hardware_decoder_absent_without_device() -> None:
    """Without a V4L2 device node the software decoder is used (the wheel lists h264_v4l2m2m everywhere)."""
    if Path("/dev/video10").exists():
        pytest.skip("this machine has a V4L2 decoder")
    assert hardware_decoder_available("h264") is None
    assert hardware_decoder_available("mjpeg") is None


def _fake_v4l2(monkeypatch: pytest.MonkeyPatch, root: Path, nodes: dict[str, str]) -> None:
    """Fake the presence of video4linux nodes (sysfs name files and /dev entries) for the detection only."""
    sysfs, dev = root / "sys-video4linux", root / "dev"
    sysfs.mkdir()
    dev.mkdir()
    for node, name in nodes.items():
        (sysfs / node).mkdir()
        (sysfs / node / "name").write_text(name + "\n")
        (dev / node).touch()
    monkeypatch.setattr(pyav, "V4L2_SYSFS", str(sysfs))
    monkeypatch.setattr(pyav, "DEV_DIR", str(dev))


def test_hardware_decoder_needs_a_decoder_node(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A webcam or an encoder node is not a decoder; the Pi 4's bcm2835-codec-decode node is, for H.264 only."""
    _fake_v4l2(monkeypatch, tmp_path, {"video0": "HD Pro Webcam C920", "video11": "bcm2835-codec-encode"})
    assert hardware_decoder_available("h264") is None
    (tmp_path / "sys-video4linux" / "video10").mkdir()
    (tmp_path / "sys-video4linux" / "video10" / "name").write_text("bcm2835-codec-decode\n")
    assert hardware_decoder_available("h264") is None, "no /dev/video10 node: nothing to open"
    (tmp_path / "dev" / "video10").touch()
    assert hardware_decoder_available("h264") == "h264_v4l2m2m"
    assert hardware_decoder_available("mjpeg") is None


@pytest.mark.parametrize(("name", "decoder"), [
    ("bcm2835-codec-decode", True), ("meson-vdec", True), ("qcom-venus-decoder", True), ("s5p-mfc-dec", True),
    ("bcm2835-codec-encode", False), ("bcm2835-codec-isp", False), ("rkvdec", False), ("UVC Camera (046d:0825)", False),
])
def test_hardware_decoder_node_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, decoder: bool) -> None:
    """Stateful decoders are recognised by a whole word of their kernel name; encoders, ISPs and webcams are not."""
    _fake_v4l2(monkeypatch, tmp_path, {"video10": name})
    assert pyav.v4l2_decoder_nodes() == ([str(tmp_path / "dev" / "video10")] if decoder else [])


def test_hardware_decoder_failure_falls_back_to_software_for_good(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, crossing_clip: Path, caplog: pytest.LogCaptureFixture) -> None:
    """With a decoder node claimed but h264_v4l2m2m unable to work here, every frame is still decoded in software,
    and later sessions of the same stream go straight to software, logging the switch once."""
    _fake_v4l2(monkeypatch, tmp_path, {"video10": "bcm2835-codec-decode"})
    assert hardware_decoder_available("h264") == "h264_v4l2m2m"
    uri = str(crossing_clip)
    caplog.set_level(logging.INFO, logger="agent.video.pyav")
    counts, memory = [], HardwareMemory()
    for _session in range(2):
        source = AvSource(uri, SourceSettings(decode_mode=DecodeMode.FULL), hardware_memory=memory)
        counts.append(sum(1 for _ in source.frames()))
        assert source.hardware is None and memory.failed(uri)
    assert counts == [300, 300]
    switches = [r for r in caplog.records if "in software" in r.getMessage()]
    assert len(switches) == 1 and "h264_v4l2m2m" in switches[0].getMessage()
    assert not memory.failed(str(tmp_path / "another-camera.mp4")), "only the failing stream is remembered"
