"""Plain settings for discovery, so that this package never imports agent.config.

The composition root (agent/app.py) maps the validated configuration onto `DiscoverySettings`; the `discover`
command builds one from its flags. Every field has a default that works on a village LAN.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

# WS-Discovery
PROBE_WINDOW_S = 3.0  # cameras answer after a random 0-500 ms (APP_MAX_DELAY); slow wifi adds a second or two
PROBE_REPEAT = 2  # SOAP-over-UDP MULTICAST_UDP_REPEAT: UDP is lossy on wifi, so each probe goes out twice
PROBE_GAP_S = 0.1  # between repeats: SOAP-over-UDP's UDP_MIN_DELAY (50 ms) .. UDP_MAX_DELAY (250 ms)

# ONVIF interrogation
CALL_TIMEOUT_S = 5.0  # one SOAP call; a camera on weak wifi answers in < 1 s or not at all
CAMERA_TIMEOUT_S = 25.0  # the whole interrogation of one camera (about eight calls)
MAX_CONCURRENT = 16  # cameras interrogated at once; bounds sockets and memory on a Pi
AUTH_ATTEMPTS = 3  # per camera per AUTH_WINDOW_S: Hikvision-style lockouts start at 5-7 failures
AUTH_WINDOW_S = 600.0
SUBSTREAM_MIN_WIDTH = 320  # smaller streams are too coarse for a person at 20 m
MAX_CLOCK_SKEW_S = 24 * 3600.0  # beyond this we report the skew (cameras reset to 1970 after a power cut)

# Subnet fallback
SCAN_PORTS = (554, 80, 8000, 8080, 8899, 37777, 34567)  # RTSP, HTTP, Hikvision, alt HTTP, XMeye, Dahua, XMeye
SCAN_MIN_PREFIX = 24  # never more than 256 addresses: this is a village LAN, not the internet
SCAN_RATE_PER_S = 200.0  # connection attempts per second: cheap wifi routers drop ARP storms
SCAN_CONCURRENCY = 64
SCAN_CONNECT_TIMEOUT_S = 0.5  # a camera on the LAN answers SYN in a few ms; absent hosts never do


@dataclass(frozen=True, slots=True)
class Credential:
    """A user name and password for ONVIF. The password never appears in repr, logs or the inventory."""

    user: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.user:
            raise ValueError("credential user must not be empty")


@dataclass(frozen=True, slots=True)
class CameraOverride:
    """What the configuration says about one known camera, matched by endpoint uuid or by IP."""

    name: str | None = None
    ip: str | None = None
    endpoint_uuid: str | None = None
    credential: Credential | None = None
    substream_min_width: int | None = None
    profile_token: str | None = None  # force a media profile instead of the automatic substream choice


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscoverySettings:
    """Everything discovery needs. Empty `interfaces` means every non-loopback IPv4 interface."""

    interfaces: tuple[str, ...] = ()  # interface names or their IPv4 addresses
    probe_window_s: float = PROBE_WINDOW_S
    probe_repeat: int = PROBE_REPEAT
    unicast_targets: tuple[str, ...] = ()  # "IP" or "IP:port" probed by unicast too (routers that drop multicast)
    multicast: bool = True  # False: unicast probes only (loopback demo, or a LAN whose router eats multicast)
    onvif_port: int = 80  # for targets found without an XAddr
    listen_hello: bool = True
    scan_subnets: tuple[str, ...] = ()  # opt-in fallback, each at most a /24
    scan_rate_per_s: float = SCAN_RATE_PER_S
    scan_concurrency: int = SCAN_CONCURRENCY
    scan_connect_timeout_s: float = SCAN_CONNECT_TIMEOUT_S
    credentials: tuple[Credential, ...] = ()
    cameras: tuple[CameraOverride, ...] = ()
    call_timeout_s: float = CALL_TIMEOUT_S
    camera_timeout_s: float = CAMERA_TIMEOUT_S
    max_concurrent: int = MAX_CONCURRENT
    auth_attempts: int = AUTH_ATTEMPTS
    auth_window_s: float = AUTH_WINDOW_S
    substream_min_width: int = SUBSTREAM_MIN_WIDTH
    check_events: bool = True

    def __post_init__(self) -> None:
        if self.probe_window_s <= 0 or self.call_timeout_s <= 0 or self.camera_timeout_s <= 0:
            raise ValueError("probe window and timeouts must be positive")
        if not 1 <= self.probe_repeat <= 5:
            raise ValueError("probe_repeat must be 1..5")
        if not 1 <= self.auth_attempts <= 10:
            raise ValueError("auth_attempts must be 1..10")
        if self.max_concurrent < 1 or self.scan_concurrency < 1 or self.scan_rate_per_s <= 0:
            raise ValueError("concurrency and rate must be positive")
        for subnet in self.scan_subnets:
            check_scan_subnet(subnet)
        for target in self.unicast_targets:
            split_target(target)

    def override_for(self, ip: str | None, endpoint_uuid: str | None, name: str | None = None) -> CameraOverride | None:
        """The configured entry for a camera: by endpoint uuid first (survives DHCP), then by IP, then by the
        ONVIF name scope (an entry with only a name matches the camera announcing that name)."""
        if endpoint_uuid:
            for cam in self.cameras:
                if cam.endpoint_uuid and cam.endpoint_uuid.lower() == endpoint_uuid.lower():
                    return cam
        if ip:
            for cam in self.cameras:
                if cam.ip == ip and not cam.endpoint_uuid:
                    return cam
        if name:
            from agent.discovery.inventory import slugify  # "Ngã ba" announced, "nga-ba" configured

            wanted = {name.lower(), slugify(name)}
            for cam in self.cameras:
                if cam.name and not cam.ip and not cam.endpoint_uuid and cam.name.lower() in wanted:
                    return cam
        return None


def split_target(target: str, default_port: int = 3702) -> tuple[str, int]:
    """ "192.168.1.64" -> ("192.168.1.64", 3702); "127.0.0.1:40123" -> ("127.0.0.1", 40123). Raises ValueError."""
    host, sep, port = target.partition(":")
    ipaddress.IPv4Address(host)
    if not sep:
        return host, default_port
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port in target {target!r}")
    return host, int(port)


def check_scan_subnet(subnet: str) -> ipaddress.IPv4Network:
    """Parse a scan subnet and refuse anything wider than a /24."""
    net = ipaddress.IPv4Network(subnet, strict=False)
    if net.prefixlen < SCAN_MIN_PREFIX:
        raise ValueError(f"scan subnet {subnet} is wider than a /{SCAN_MIN_PREFIX}; name a /24 or smaller")
    return net
