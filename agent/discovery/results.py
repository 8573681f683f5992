"""What discovery finds and what interrogation answers, as frozen values.

`CameraInfo` (agent/models.py) is what leaves this package for the rest of the agent; the types here carry the
extra detail the `discover` command and the inventory need (how a camera was found, why it failed).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from agent.models import CameraInfo


class Via(enum.StrEnum):
    """How a camera was found."""

    MULTICAST = "multicast"
    UNICAST = "unicast"
    HELLO = "hello"
    SCAN = "scan"
    TARGET = "target"  # named by the user or config, not (yet) answering discovery


@dataclass(frozen=True, slots=True)
class Discovered:
    """A device that answered discovery. `xaddr` is already corrected to the address it answered from."""

    ip: str
    xaddr: str
    via: Via
    endpoint_uuid: str | None = None
    endpoint_address: str | None = None
    name: str | None = None  # decoded ONVIF scopes
    hardware: str | None = None
    location: str | None = None
    types: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    advertised_xaddrs: tuple[str, ...] = ()
    interface: str | None = None
    open_ports: tuple[int, ...] = ()  # from the subnet scan


class FailureReason(enum.StrEnum):
    """Why interrogation of a camera failed, in the words the installer sees."""

    NO_ONVIF_ANSWER = "no ONVIF answer"
    AUTH_FAILED = "auth failed"
    CLOCK_SKEW = "clock skew too large"
    TIMEOUT = "timeout"
    UNSUPPORTED = "unsupported"


class WsdEventKind(enum.StrEnum):
    HELLO = "hello"  # appeared or rebooted
    BYE = "bye"  # leaving


@dataclass(frozen=True, slots=True)
class WsdEvent:
    """A Hello or Bye heard on the multicast group."""

    kind: WsdEventKind
    source_ip: str
    endpoint_uuid: str | None
    endpoint_address: str
    device: Discovered | None  # for Hello: what it announced (None for Bye)


@dataclass(frozen=True, slots=True)
class Profile:
    token: str
    name: str | None
    width: int | None
    height: int | None
    encoding: str | None


@dataclass(frozen=True, slots=True)
class Interrogation:
    """The outcome of talking ONVIF to one camera. `info.camera_id` is empty until the inventory names it."""

    info: CameraInfo
    ok: bool
    reason: FailureReason | None = None
    detail: str = ""  # plain words for the technician; never contains a password
    auth_attempts: int = 0  # credential attempts made in this interrogation
    clock_skew_s: float | None = None  # camera clock minus ours
    profiles: tuple[Profile, ...] = ()
    credential_user: str | None = None  # which user worked (the password stays in memory, in the settings)
    discovered: Discovered | None = field(default=None, compare=False)
