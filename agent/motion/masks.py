"""Rasterise relative polygons (masks and zones) onto the detector's working grid."""

from __future__ import annotations

import cv2
import numpy as np

from agent.motion.settings import Polygon


def polygon_mask(polygons: tuple[Polygon, ...], shape: tuple[int, int]) -> np.ndarray:
    """A uint8 image of `shape` (h, w) that is 255 inside any of `polygons` (relative coordinates) and 0 elsewhere."""
    h, w = shape
    mask = np.zeros((h, w), np.uint8)
    for polygon in polygons:
        pts = np.array([[round(x * (w - 1)), round(y * (h - 1))] for x, y in polygon], np.int32)
        cv2.fillPoly(mask, [pts], 255)
    return mask
