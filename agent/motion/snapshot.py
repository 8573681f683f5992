"""JPEG encoding of an event's peak frame; size and quality are settings, the file handling lives in storage."""

from __future__ import annotations

import cv2
import numpy as np

from agent.motion.settings import SnapshotSettings


def encode_jpeg(image: np.ndarray, settings: SnapshotSettings | None = None) -> bytes:
    """Encode a grey (h, w) or BGR (h, w, 3) uint8 image as JPEG, downscaled to at most `max_width`."""
    s = settings or SnapshotSettings()
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"expected a uint8 grey or BGR image, got shape {image.shape} dtype {image.dtype}")
    h, w = image.shape[:2]
    if w > s.max_width:
        image = cv2.resize(image, (s.max_width, max(1, round(h * s.max_width / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, s.quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
