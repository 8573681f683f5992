"""Real Mosquitto broker fixtures: every test that talks MQTT gets its own `mosquitto` on a free loopback port.

Three variants, built from a generated config in the test's tmp dir:
- ``anonymous``: anyone may connect;
- ``auth``: username/password (``mosquitto_passwd -b``) plus an ACL file the test may write (to deny a topic);
- ``tls``: a throwaway CA and a server certificate whose SAN carries ``IP:127.0.0.1`` (openssl CLI).

A `Broker` can be stopped (SIGTERM), crashed (SIGKILL), hung (SIGSTOP) and resumed (SIGCONT), and restarted on the
same port with persistence on, so tests can reproduce what a station's broker does to us in the field. The fixture
checks the broker really listens before yielding and never leaves one running: finalizers kill it even when the test
fails. The machine's own Mosquitto on 1883 is never touched.

Use ``broker`` / ``auth_broker`` / ``tls_broker`` for the defaults, ``broker_factory(variant=..., acl=...)`` for
anything else, and ``Broker.client()`` / ``Collector`` for a ready paho client on the station side.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
LISTEN_DEADLINE_S = 10.0  # a cold mosquitto start on a loaded 2-core CI box takes well under a second
STOP_GRACE_S = 10.0  # SIGTERM, then SIGKILL: mosquitto saves its persistence file on SIGTERM
VARIANTS = ("anonymous", "auth", "tls")

# Users of the `auth` variant. Test-only secrets; the agent never sees these values outside tests.
DEFAULT_USERS = {"agent": "agent-pass-1", "station": "station-pass-1"}
E2E_USERS = {"agent": "e2e-agent-pass-7", "station": "e2e-station-pass-7"}  # the end-to-end site's broker
DEFAULT_ACL = "user agent\ntopic readwrite #\n\nuser station\ntopic readwrite #\n"


def _die_with_parent() -> None:
    """preexec: the kernel SIGKILLs the broker if the test process dies (even by SIGKILL), so no broker outlives
    its test run. Linux ties this to the *thread* that started it; tests start brokers from the main thread."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (a race with other processes is handled by retrying)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def close_all(items: Iterable[Any]) -> None:
    """Close every item, then raise the first AssertionError one of them raised (a collector that saw a password):
    one leak must not leave the other brokers or collectors open."""
    failures: list[AssertionError] = []
    for item in items:
        try:
            item.close()
        except AssertionError as exc:
            failures.append(exc)
    if failures:
        raise failures[0]


@dataclass(frozen=True)
class TlsMaterial:
    """A throwaway CA with a server certificate for 127.0.0.1, and an unrelated CA for "wrong CA" tests."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    other_ca_cert: Path
    client_cert: Path  # signed by ca_cert, for brokers that require a client certificate
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_tls_material(directory: Path) -> TlsMaterial:
    """Create CA, server cert (SAN IP:127.0.0.1, DNS:localhost) and a second CA with the openssl CLI (EC keys: fast)."""
    d = directory
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for name in ("ca", "other-ca"):
        _openssl("req", "-x509", *ec, "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
                 "-subj", f"/CN=matthan-test-{name}", cwd=d)
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "san.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "2", "-extfile", "san.ext", cwd=d)
    _openssl("req", *ec, "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=agent1", cwd=d)
    (d / "client.ext").write_text("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    _openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "client.crt", "-days", "2", "-extfile", "client.ext", cwd=d)
    return TlsMaterial(d / "ca.crt", d / "server.crt", d / "server.key", d / "other-ca.crt", d / "client.crt",
                       d / "client.key")


@dataclass
class Broker:
    """One mosquitto process owned by a test. Host and port stay the same across stop/start/restart."""

    workdir: Path
    variant: str = "anonymous"
    acl: str = DEFAULT_ACL
    users: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_USERS))
    tls: TlsMaterial | None = None
    persistence: bool = True
    extra_config: str = ""
    require_client_cert: bool = False  # tls variant: refuse clients without a certificate signed by the CA
    host: str = "127.0.0.1"
    port: int = 0
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _hung: bool = field(default=False, repr=False)
    _collectors: list[Collector] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown broker variant {self.variant!r}; use one of {VARIANTS}")
        if self.variant == "tls" and self.tls is None:
            raise ValueError("the tls variant needs TlsMaterial")
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "persist").mkdir(exist_ok=True)

    # ---- what clients need -------------------------------------------------------------------------------------
    @property
    def username(self) -> str | None:
        return "agent" if self.variant == "auth" else None

    @property
    def password(self) -> str | None:
        return self.users["agent"] if self.variant == "auth" else None

    @property
    def credentials(self) -> tuple[str, str] | None:
        """(username, password) of the agent's account on an `auth` broker, else None."""
        return ("agent", self.users["agent"]) if self.variant == "auth" else None

    @property
    def ca_path(self) -> Path | None:
        return self.tls.ca_cert if self.tls else None

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    def log_tail(self, n: int = 30) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    # ---- configuration -----------------------------------------------------------------------------------------
    def _write_config(self) -> Path:
        lines = [
            f"listener {self.port} {self.host}",
            "per_listener_settings false",
            f"user {getpass.getuser()}",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "max_queued_messages 200000",  # the station's persistent session must hold a whole outage
            "max_inflight_messages 100",
        ]
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.workdir / 'persist'}/", "autosave_interval 1"]
        if self.variant == "auth":
            pw = self.workdir / "passwd"
            pw.unlink(missing_ok=True)
            for i, (user, secret) in enumerate(self.users.items()):
                args = ["mosquitto_passwd", *(["-c"] if i == 0 else []), "-b", str(pw), user, secret]
                subprocess.run(args, check=True, capture_output=True, timeout=30)
            (self.workdir / "acl").write_text(self.acl)
            lines += ["allow_anonymous false", f"password_file {pw}", f"acl_file {self.workdir / 'acl'}"]
        else:
            lines.append("allow_anonymous true")
        if self.variant == "tls":
            assert self.tls is not None
            lines += [f"cafile {self.tls.ca_cert}", f"certfile {self.tls.server_cert}",
                      f"keyfile {self.tls.server_key}",
                      f"require_certificate {'true' if self.require_client_cert else 'false'}"]
        if self.extra_config:
            lines.append(self.extra_config)
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    # ---- life cycle --------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc else None

    def start(self) -> None:
        """Start on `port` (a free one the first time) and return once it accepts TCP connections."""
        if self.running:
            raise RuntimeError("broker already running")
        fresh_port = self.port == 0
        for attempt in range(5):
            if (fresh_port and attempt > 0) or self.port == 0:
                self.port = free_port()  # somebody took our free port between the check and mosquitto's bind
            conf = self._write_config()
            with open(self.workdir / "mosquitto.out", "ab") as out:
                self._proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT,
                                              start_new_session=True, preexec_fn=_die_with_parent)
            if self._wait_listening():
                self._hung = False
                return
            in_use = "Address already in use" in self.log_tail(200) + self._out_tail()
            self._kill_quietly()
            if not in_use:
                break
            if not fresh_port:
                time.sleep(0.5)  # same port right after a crash: wait for the kernel to release it, then retry
        raise RuntimeError(f"mosquitto did not start on {self.host}:{self.port}:\n{self.log_tail()}\n"
                           f"{self._out_tail()}")

    def _out_tail(self) -> str:
        p = self.workdir / "mosquitto.out"
        return p.read_text(errors="replace")[-2000:] if p.exists() else ""

    def _wait_listening(self) -> bool:
        deadline = time.monotonic() + LISTEN_DEADLINE_S
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)  # polling a socket that is not there yet; bounded by the deadline
        return False

    def stop(self) -> None:
        """SIGTERM (mosquitto writes its persistence file), wait, then SIGKILL if it does not go."""
        if not self.running or self._proc is None:
            return
        if self._hung:
            self.resume()
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self._kill_quietly()

    def crash(self) -> None:
        """SIGKILL: no persistence save, no will messages, sockets reset."""
        self._kill_quietly()

    def hang(self) -> None:
        """SIGSTOP: TCP connections stay open and connects are still accepted by the kernel, but nothing answers."""
        if self.running and self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)
            self._hung = True

    def resume(self) -> None:
        """SIGCONT after hang()."""
        if self.running and self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)
            self._hung = False

    def restart(self) -> None:
        """Graceful stop then start on the same port; persistent sessions and retained messages survive."""
        self.stop()
        self.start()

    def set_acl(self, acl: str, timeout: float = 5.0) -> None:
        """Replace the ACL of an `auth` broker and reload it (SIGHUP), returning once mosquitto has reloaded."""
        if self.variant != "auth" or self._proc is None:
            raise RuntimeError("set_acl needs a running auth broker")
        self.acl = acl
        (self.workdir / "acl").write_text(acl)
        before = self.log_path.read_text(errors="replace").count("Reloading config")
        self._proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while self.log_path.read_text(errors="replace").count("Reloading config") <= before:
            if time.monotonic() > deadline:
                raise TimeoutError("mosquitto did not reload its ACL")
            time.sleep(0.05)  # polling the broker's log with a deadline

    def _kill_quietly(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGCONT)
                self._proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(STOP_GRACE_S)
        self._hung = False

    def close(self) -> None:
        """Finalizer: never leave a broker behind, whatever state the test left it in. Then close the collectors
        the test left open, which checks what they received for test passwords (AssertionError on a leak)."""
        self._kill_quietly()
        collectors, self._collectors = self._collectors, []
        close_all(collectors)

    # ---- station-side clients ----------------------------------------------------------------------------------
    def client(self, client_id: str = "", *, user: str | None = None, ca: Path | None = None,
               clean_start: bool = True, session_expiry: int = 0, connect: bool = True) -> Any:
        """A paho v5 client configured for this broker (as `user`, default the agent's account), loop started."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if self.variant == "auth":
            name = user or "agent"
            c.username_pw_set(name, self.users[name])
        if self.variant == "tls":
            ctx = ssl.create_default_context(cafile=str(ca or self.ca_path))
            if self.require_client_cert and self.tls is not None:
                ctx.load_cert_chain(str(self.tls.client_cert), str(self.tls.client_key))
            c.tls_set_context(ctx)
        if connect:
            props = Properties(PacketTypes.CONNECT)
            if session_expiry:
                props.SessionExpiryInterval = session_expiry
            c.connect(self.host, self.port, keepalive=10, clean_start=clean_start, properties=props)
            c.loop_start()
        return c


class Collector:
    """A station-side subscriber that records every message; `wait_for` polls with a deadline, never a bare sleep.

    `close()` (also called by the broker's finalizer for a collector the test left open) fails with an
    AssertionError if any received topic or payload holds a known test password (tests/cli_tools/secret_scan.py).
    """

    def __init__(self, broker: Broker, topic: str, *, client_id: str = "", user: str = "station",
                 session_expiry: int = 0, qos: int = 1) -> None:
        self.messages: list[Any] = []
        self._closed = False
        broker._collectors.append(self)
        self._cond = threading.Condition()
        self._topic, self._qos = topic, qos
        self.connected = threading.Event()  # connected and subscribed
        self.client = broker.client(client_id, user=user, clean_start=session_expiry == 0,
                                    session_expiry=session_expiry, connect=False)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.connected.set()  # ready only once the SUBACK is back
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.reconnect_delay_set(0.2, 1.0)
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)
        if session_expiry:
            props.SessionExpiryInterval = session_expiry
        self.client.connect(broker.host, broker.port, keepalive=5, clean_start=session_expiry == 0, properties=props)
        self.client.loop_start()
        if not self.connected.wait(LISTEN_DEADLINE_S):
            raise TimeoutError(f"collector could not subscribe to {topic}")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            client.subscribe(self._topic, qos=self._qos)  # idempotent; also covers a broker that lost the session

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[Any]], bool], timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.messages), timeout)

    def close(self) -> None:
        """Disconnect, then check that no received message carried a test password."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()
        leaks = self.password_leaks()
        assert not leaks, f"a test password reached the station (secret, topic): {leaks[:3]}"

    def password_leaks(self) -> list[tuple[str, str]]:
        """(password, topic) for every received message whose topic or payload holds a known test password."""
        from tests.cli_tools.secret_scan import find_leaks_in_bytes  # imports this module: import here, not above

        with self._cond:
            received = [(str(m.topic), m.topic.encode() + b"\0" + bytes(m.payload)) for m in self.messages]
        return find_leaks_in_bytes(received)


# ---- fixtures ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    """One throwaway CA per test session (EC keys take milliseconds, but there is no need to redo them)."""
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not installed (apt-get install openssl)")
    return make_tls_material(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def broker_factory(tmp_path: Path, tls_material: TlsMaterial) -> Iterator[Callable[..., Broker]]:
    """Start brokers with any variant/ACL/extra config; all of them are killed when the test ends."""
    if not os.path.exists(MOSQUITTO):
        pytest.skip("mosquitto not installed (apt-get install mosquitto mosquitto-clients)")
    made: list[Broker] = []

    def make(variant: str = "anonymous", *, acl: str = DEFAULT_ACL, persistence: bool = True,
             extra_config: str = "", require_client_cert: bool = False, start: bool = True) -> Broker:
        b = Broker(tmp_path / f"broker-{len(made)}", variant=variant, acl=acl, persistence=persistence,
                   tls=tls_material if variant == "tls" else None, extra_config=extra_config,
                   require_client_cert=require_client_cert)
        made.append(b)
        if start:
            b.start()
        return b

    try:
        yield make
    finally:
        close_all(made)


@pytest.fixture
def broker(broker_factory: Callable[..., Broker]) -> Broker:
    """An anonymous Mosquitto on a free loopback port."""
    return broker_factory("anonymous")


@pytest.fixture
def auth_broker(broker_factory: Callable[..., Broker]) -> Broker:
    """A Mosquitto with username/password and an ACL (users `agent` and `station`, both read/write `#`)."""
    return broker_factory("auth")


@pytest.fixture
def tls_broker(broker_factory: Callable[..., Broker]) -> Broker:
    """A Mosquitto speaking TLS only, with a throwaway CA (`broker.ca_path`)."""
    return broker_factory("tls")
