"""Small validated value types shared by the config models: names, polygons, networks, sizes.

Each validator's error message says what is wrong *and* what is allowed, because it is printed verbatim to the
installer next to the line number.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

# Site, agent, camera and zone names end up inside MQTT topics and file names: no '/', '+', '#', spaces.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
NAME_RULE = "1-63 characters: lower-case letters a-z, digits, '-' or '_', starting with a letter or digit"

# The smallest polygon area (fraction of the frame) that is not a mistake; below it the points are collinear.
MIN_POLYGON_AREA = 1e-6
# Scanning more than a /24 (256 addresses) from a Pi floods a village LAN and takes too long to be useful.
MAX_SCAN_PREFIX_ADDRESSES = 256


def _check_name(value: str) -> str:
    if not NAME_PATTERN.match(value):
        raise ValueError(f"'{value}' is not a valid name; allowed: {NAME_RULE}")
    return value


Name = Annotated[str, AfterValidator(_check_name)]


def topic_safe(text: str) -> str:
    """Turn an arbitrary host name into a valid `Name` (lower-case, bad characters replaced by '-')."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")
    return slug[:63] or "agent"


def default_agent_id() -> str:
    return topic_safe(socket.gethostname().split(".")[0])


def _polygon_area(points: list[tuple[float, float]]) -> float:
    total = 0.0
    for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1], strict=True):
        total += x1 * y2 - x2 * y1
    return abs(total) / 2.0


def _check_point(value: Any) -> Any:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError("a point must be a pair [x, y] of numbers between 0 and 1, e.g. [0.25, 0.5]")
    return value


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _segments_cross(p1: tuple[float, float], p2: tuple[float, float], q1: tuple[float, float],
                    q2: tuple[float, float]) -> bool:
    """Proper crossing only (touching at an end point is allowed), which is what an out-of-order corner causes."""
    d1, d2 = _cross(q1, q2, p1), _cross(q1, q2, p2)
    d3, d4 = _cross(p1, p2, q1), _cross(p1, p2, q2)
    return d1 * d2 < 0 and d3 * d4 < 0


def _self_intersects(points: list[tuple[float, float]]) -> bool:
    edges = list(zip(points, points[1:] + points[:1], strict=True))
    count = len(edges)
    for i in range(count):
        for j in range(i + 2, count):
            if i == 0 and j == count - 1:
                continue  # the first and last edges share a corner
            if _segments_cross(*edges[i], *edges[j]):
                return True
    return False


def _check_polygon(points: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
    if _self_intersects(list(points)):
        raise ValueError(
            "the polygon's edges cross each other; list its corners in order around the shape (like a fence)"
        )
    if _polygon_area(list(points)) < MIN_POLYGON_AREA:
        raise ValueError(
            "the polygon has no area (its points lie on one line or repeat); give at least 3 points that enclose "
            "a region"
        )
    return points


Coordinate = Annotated[float, Field(ge=0.0, le=1.0)]
Point = Annotated[tuple[Coordinate, Coordinate], BeforeValidator(_check_point)]
Polygon = Annotated[tuple[Point, ...], Field(min_length=3), AfterValidator(_check_polygon)]


def _check_uuid(value: Any) -> Any:
    text = str(value).strip().lower()
    bare = text.removeprefix("urn:uuid:")
    try:
        parsed = uuid.UUID(bare)
    except ValueError:
        raise ValueError(
            f"'{value}' is not an ONVIF endpoint UUID; allowed: urn:uuid:xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx "
            "(as shown by `matthan-agent discover`)"
        ) from None
    return f"urn:uuid:{parsed}"


EndpointUuid = Annotated[str, BeforeValidator(_check_uuid)]


def _check_ipv4(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return ipaddress.IPv4Address(value.strip())
        except ValueError:
            raise ValueError(
                f"'{value}' is not an IPv4 address; allowed: four numbers 0-255, e.g. 192.168.1.64"
            ) from None
    return value


IPv4 = Annotated[ipaddress.IPv4Address, BeforeValidator(_check_ipv4)]


def _check_subnet(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        net = ipaddress.IPv4Network(value.strip(), strict=False)
    except ValueError:
        raise ValueError(f"'{value}' is not an IPv4 subnet; allowed: CIDR notation such as 192.168.1.0/24") from None
    if str(net.network_address) != value.strip().split("/")[0]:
        raise ValueError(f"'{value}' has host bits set; did you mean {net}?")
    if net.num_addresses > MAX_SCAN_PREFIX_ADDRESSES:
        raise ValueError(
            f"{net} is /{net.prefixlen} ({net.num_addresses} addresses); at most /24 is allowed, so list each /24 "
            "separately"
        )
    return net


Subnet = Annotated[ipaddress.IPv4Network, BeforeValidator(_check_subnet)]


def _check_interface(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.:@-]{1,15}", value):
        raise ValueError(f"'{value}' is not a network interface name; allowed: names such as eth0, wlan0, enp1s0")
    return value


InterfaceName = Annotated[str, AfterValidator(_check_interface)]
