"""Plain settings for the MQTT client and the relay. The composition root maps agent/config onto these, so that
agent/mqtt never imports the configuration package (and tests can build them in one line)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class MqttSettings:
    """How to reach the station's broker."""

    host: str
    port: int = 1883
    client_id: str  # stable per agent; the broker refuses two live connections with the same id
    prefix: str  # e.g. matthan/v1/<site>/<agent>
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: str | None = None  # None with tls=True: the system's CA store (verification stays on)
    cert_file: str | None = None  # optional client certificate
    key_file: str | None = None
    tls_insecure: bool = False  # testing only: no certificate or host name check (anyone can impersonate the broker)
    keepalive_s: int = 30  # a dead link is noticed after 1-2 keepalives
    connect_timeout_s: float = 10.0  # TCP + TLS + CONNACK; a hung broker accepts TCP but never answers
    backoff_min_s: float = 0.5
    backoff_max_s: float = 60.0  # capped: a village link that comes back is used within a minute
    stall_kick_s: float = 0.0  # watchdog: no PUBACK for this long while connected → new client (0: 2×keepalive+5)
    version: str | None = None  # agent version, in the status payload
    ha_discovery: bool = False
    ha_prefix: str = "homeassistant"

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("mqtt host must not be empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"mqtt port must be 1..65535, not {self.port}")
        if not self.client_id:
            raise ValueError("mqtt client_id must not be empty")
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("a client certificate needs both cert_file and key_file")
        if (self.ca_file or self.cert_file) and not self.tls:
            raise ValueError("ca_file/cert_file are set but tls is off; turn tls on or remove them")
        if self.keepalive_s < 2 or self.backoff_min_s <= 0 or self.backoff_max_s < self.backoff_min_s:
            raise ValueError("keepalive_s >= 2 and 0 < backoff_min_s <= backoff_max_s are required")

    @property
    def stall_limit_s(self) -> float:
        return self.stall_kick_s or 2.0 * self.keepalive_s + 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RelaySettings:
    """How the relay drains the outbox."""

    window: int = 64  # QoS 1 messages in flight; clamped to the broker's Receive Maximum
    replay_rate: float = 500.0  # backlog messages per second after an outage (0 = as fast as the window allows)
    stall_s: float = 0.5  # the oldest unacknowledged message is older than this: send nothing new (limits dups)
    station_ack: bool = False  # keep rows until the station's retained {"seq": N} covers them
    claim_batch: int = 256  # rows read from SQLite per query

    def __post_init__(self) -> None:
        if self.window < 1 or self.claim_batch < 1:
            raise ValueError("window and claim_batch must be at least 1")
        if self.replay_rate < 0 or self.stall_s <= 0:
            raise ValueError("replay_rate must be >= 0 and stall_s > 0")


def backoff_delay(attempt: int, lo: float, hi: float, rand: random.Random | None = None) -> float:
    """Capped exponential backoff with jitter: a random delay in [d/2, d], d = min(hi, lo * 2**attempt).

    The jitter keeps forty agents of a district from reconnecting in lock-step after the station's broker
    restarts; the lower half bound keeps a single agent from hammering a broker that just refused it.
    """
    d = min(hi, lo * (2 ** min(attempt, 30)))
    r = (rand or random).random()
    return d / 2 + r * d / 2
