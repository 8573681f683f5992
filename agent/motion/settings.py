"""Plain settings for the motion package: frozen dataclasses with defaults that work on a village substream.

The motion package never reads the configuration file; the composition root maps the validated config onto these
types. Everything geometric is relative (0..1) so that a camera changing its substream resolution keeps its masks.
"""

from __future__ import annotations

from dataclasses import dataclass

Point = tuple[float, float]
Polygon = tuple[Point, ...]


def _check_polygon(polygon: Polygon, what: str) -> None:
    if len(polygon) < 3:
        raise ValueError(f"{what} needs at least 3 points, got {len(polygon)}")
    for x, y in polygon:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"{what} point ({x}, {y}) is outside 0..1 (coordinates are relative to the image)")


@dataclass(frozen=True, slots=True)
class Zone:
    """A named area of interest; events list the zones their motion touched."""

    name: str
    polygon: Polygon

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a zone needs a name")
        _check_polygon(self.polygon, f"zone {self.name!r}")


@dataclass(frozen=True, slots=True)
class MotionSettings:
    """Detector tuning. Defaults are chosen for 320 px working width and 1..15 fps analysis."""

    work_width: int = 320  # px; the frame is downscaled to this width first, which bounds the cost per frame
    blur_ksize: int = 3  # px, odd; with the area downscale, removes sensor noise and blocking before differencing
    threshold: int = 18  # grey levels a pixel must differ from the background, before the noise map adds more
    noise_gain: float = 2.0  # extra threshold per grey level of learned per-pixel noise
    noise_tau_s: float = 10.0  # s; how fast the noise map learns (a swaying tree is learned within ~20 s)
    background_tau_s: float = 3.0  # s; running-average background time constant
    min_area: float = 0.0008  # fraction of the image; smaller blobs are noise (about 46 px at 320x180)
    dilate_iterations: int = 2  # joins the pieces of one object into one blob
    global_change_fraction: float = 0.30  # changed fraction of the unmasked area above which a frame is vetoed
    settle_s: float = 1.5  # s after a veto during which frames are compared with the previous frame, not the background
    warmup_s: float = 1.0  # s after start or reset with no motion reported: the background is not learned yet
    global_change_guard: bool = True
    noise_map: bool = True
    auto_osd_mask: bool = True
    masks: tuple[Polygon, ...] = ()  # areas never analysed (relative polygons)
    zones: tuple[Zone, ...] = ()

    def __post_init__(self) -> None:
        if self.work_width < 32:
            raise ValueError(f"work_width must be at least 32 px, got {self.work_width}")
        if self.blur_ksize < 1 or self.blur_ksize % 2 == 0:
            raise ValueError(f"blur_ksize must be a positive odd number, got {self.blur_ksize}")
        if not 1 <= self.threshold <= 254:
            raise ValueError(f"threshold must be 1..254 grey levels, got {self.threshold}")
        if not 0.0 < self.global_change_fraction <= 1.0:
            raise ValueError(f"global_change_fraction must be in (0, 1], got {self.global_change_fraction}")
        if not 0.0 <= self.min_area < 1.0:
            raise ValueError(f"min_area is a fraction of the image in [0, 1), got {self.min_area}")
        for name, value in (("noise_tau_s", self.noise_tau_s), ("background_tau_s", self.background_tau_s)):
            if value <= 0:
                raise ValueError(f"{name} must be > 0 s, got {value}")
        for i, polygon in enumerate(self.masks):
            _check_polygon(polygon, f"mask {i}")
        names = [z.name for z in self.zones]
        if len(names) != len(set(names)):
            raise ValueError(f"zone names must be unique, got {names}")


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    """Event hysteresis, in seconds so that it behaves the same at 1 fps and at 15 fps."""

    min_motion_s: float = 0.5  # s of continuous motion before an event starts
    event_gap_s: float = 5.0  # s without motion after which the event ends
    max_event_s: float = 300.0  # s; a longer event is ended and a new event id continues it
    update_interval_s: float = 10.0  # s between `update` messages of a running event (only when something changed)

    def __post_init__(self) -> None:
        if self.min_motion_s < 0:
            raise ValueError(f"min_motion_s must be >= 0, got {self.min_motion_s}")
        if self.event_gap_s <= 0:
            raise ValueError(f"event_gap_s must be > 0, got {self.event_gap_s}")
        if self.max_event_s <= self.event_gap_s:
            raise ValueError(f"max_event_s ({self.max_event_s}) must exceed event_gap_s ({self.event_gap_s})")
        if self.update_interval_s <= 0:
            raise ValueError(f"update_interval_s must be > 0, got {self.update_interval_s}")


@dataclass(frozen=True, slots=True)
class SnapshotSettings:
    max_width: int = 640  # px; the station needs to recognise a person, not to archive video
    quality: int = 80  # JPEG quality 1..100; about 30-60 KB at 640x360

    def __post_init__(self) -> None:
        if self.max_width < 16:
            raise ValueError(f"snapshot max_width must be >= 16 px, got {self.max_width}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"snapshot quality must be 1..100, got {self.quality}")
