"""Config models for talking to the network: the station's MQTT broker and camera discovery on the LAN."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Annotated, Self

from pydantic import AfterValidator, ValidationInfo, field_validator, model_validator

from agent.config.fields import Strict, cross_field, field
from agent.config.secrets import SecretFields, base_dir
from agent.config.types import InterfaceName, IPv4, Subnet

DEFAULT_TOPIC_PREFIX = "matthan/v1/{site}/{agent}"
MQTT_PORT = 1883
MQTTS_PORT = 8883
REPLAY_RATE_MAX_PER_S = 10_000  # msg/s; 5x the 2,000/s backlog goal, so more is a typo (0 means unlimited)


def _readable_file(value: Path, info: ValidationInfo) -> Path:
    path = value if value.is_absolute() else base_dir(info) / value
    try:
        with path.open("rb"):
            pass
    except FileNotFoundError:
        raise ValueError(f"file {path} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a directory, not a file") from None
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    return path


ReadableFile = Annotated[Path, AfterValidator(_readable_file)]


class TlsConfig(Strict):
    """TLS to the broker. Present means on, with the server certificate verified against a CA."""

    enabled: bool = field(True, "use TLS; set false to keep the section but connect in plain text")
    ca_file: ReadableFile | None = field(
        None, "CA certificate (PEM) that signed the broker's certificate; default: the system's CA store",
        type_name="path",
    )
    cert_file: ReadableFile | None = field(
        None, "client certificate (PEM) when the broker wants one; needs key_file", type_name="path"
    )
    key_file: ReadableFile | None = field(None, "private key (PEM) of cert_file", type_name="path")
    insecure: bool = field(
        False, "skip verifying the broker's certificate and host name (testing only: anyone can impersonate it)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        if self.cert_file is not None and self.key_file is None:
            problems.append((("cert_file",), "cert_file needs key_file (the client certificate's private key)"))
        if self.key_file is not None and self.cert_file is None:
            problems.append((("key_file",), "key_file needs cert_file (the client certificate it belongs to)"))
        if self.insecure and not self.enabled:
            problems.append((("insecure",), "insecure only applies when TLS is enabled; remove it"))
        if self.insecure and self.ca_file is not None:
            problems.append((("insecure",), "insecure: true ignores ca_file; remove one of them"))
        if problems:
            raise cross_field(problems)
        return self


class MqttConfig(SecretFields):
    """The station's MQTT broker."""

    host: str = field(description="broker host name or IP address (no mqtt:// and no port)", min_length=1)
    port: int | None = field(
        None, "broker TCP port", default_text="1883, or 8883 with TLS", ge=1, le=65535
    )
    tls: TlsConfig | None = field(None, "TLS settings; leave out for plain MQTT", type_name="mapping")
    keepalive: int = field(
        30, "seconds between keep-alive pings; the broker declares us dead after 1.5x", ge=5, le=1200
    )
    client_id: str | None = field(
        None, "MQTT client id; must be unique on the broker", default_text="matthan-{site}-{agent}",
        min_length=1, max_length=128,
    )
    topic_prefix: str = field(
        DEFAULT_TOPIC_PREFIX,
        "prefix of every topic; {site} and {agent} are replaced by site_id and agent_id",
    )
    replay_rate_per_s: float = field(
        20.0,
        "messages per second when sending events stored while the link was down; 0 = unlimited, as fast as "
        "inflight_window and the link allow (to clear a backlog of 100,000 events at 2,000/s or more on a "
        "fast link). A low rate leaves a slow village uplink free for live events while the backlog drains",
        ge=0, le=REPLAY_RATE_MAX_PER_S,
    )
    inflight_window: int = field(20, "QoS 1 messages sent but not yet acknowledged, at most", ge=1, le=1000)
    station_ack: bool = field(
        False, "keep events in the outbox until the station acknowledges them on the ack topic, not only the broker"
    )

    @field_validator("tls", mode="before")
    @classmethod
    def _tls_not_blank(cls, value: object) -> object:
        # An empty `tls:` is ambiguous (sub-keys commented out?); never silently fall back to plain text.
        if value is None:
            raise ValueError(
                "is empty; write 'tls: {}' for TLS with the system's CA store, or remove the key for plain MQTT"
            )
        return value

    @field_validator("host")
    @classmethod
    def _plain_host(cls, value: str) -> str:
        if "://" in value or "/" in value:
            raise ValueError(f"'{value}' is not a host name; give only the host, e.g. mqtt.cong-an-huyen.vn")
        if ":" in value and value.count(":") == 1:
            raise ValueError(f"'{value}' includes a port; put the port in mqtt.port")
        if any(c.isspace() for c in value):
            raise ValueError("a host name cannot contain spaces")
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError:
            raise ValueError("unbalanced { or }; allowed placeholders are {site} and {agent}") from None
        unknown = names - {"site", "agent"}
        if unknown:
            raise ValueError(f"unknown placeholder {{{sorted(unknown)[0]}}}; allowed placeholders: {{site}}, {{agent}}")
        if any(c in value for c in "+#\0"):
            raise ValueError("must not contain the MQTT wildcards + or #")
        if value.startswith("/") or value.endswith("/") or "//" in value:
            raise ValueError("must not start or end with '/' nor contain an empty level '//'")
        if not value:
            raise ValueError("must not be empty")
        return value

    @property
    def broker_port(self) -> int:
        """The port to connect to: the configured one, else the MQTT default for plain or TLS."""
        if self.port is not None:
            return self.port
        return MQTTS_PORT if self.tls_enabled else MQTT_PORT

    @property
    def tls_enabled(self) -> bool:
        return self.tls is not None and self.tls.enabled


class CredentialSet(SecretFields):
    """A user name and password that discovery tries on cameras that need authentication."""

    username: str = field(description="user name on the camera (often admin)", min_length=1)


class DiscoveryConfig(Strict):
    """Finding cameras: WS-Discovery multicast, unicast probes to known addresses, and an opt-in subnet scan."""

    enabled: bool = field(True, "look for ONVIF cameras on the LAN")
    interfaces: tuple[InterfaceName, ...] = field(
        (), "network interfaces to probe on", default_text="all with an IPv4 address", type_name="list of names"
    )
    interval_s: float = field(
        300.0, "seconds between discovery rounds; under 120 the ONVIF interrogation helper process stays up between "
        "rounds", ge=10, le=86400)
    probe_timeout_s: float = field(3.0, "seconds to wait for answers to one probe", ge=0.5, le=30)
    targets: tuple[IPv4, ...] = field(
        (), "camera addresses probed directly (for cameras that ignore multicast)", type_name="list of IPv4"
    )
    scan_subnets: tuple[Subnet, ...] = field(
        (), "subnets (at most /24 each) scanned for ONVIF ports when multicast finds nothing; opt-in",
        type_name="list of CIDR",
    )
    scan_rate_per_s: float = field(20.0, "connection attempts per second during a subnet scan", ge=1, le=200)
    hello_listener: bool = field(True, "listen for cameras announcing themselves (WS-Discovery Hello)")
    credentials: tuple[CredentialSet, ...] = field(
        (), "user name/password sets tried, in order, on cameras without their own credentials",
        type_name="list of mappings",
    )
