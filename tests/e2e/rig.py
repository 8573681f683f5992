"""A whole village site for end-to-end tests: simulated cameras, a broker, the agent and a station subscriber.

Layout (agent/simulator/netns.py): the cameras live in the camera namespace; the broker, the agent and the station
live in the agent namespace. They are started from a thread that joined the agent namespace, and processes inherit
their creator thread's network namespace, so everything talks over the veth cable and WS-Discovery multicast never
leaves the namespaces.

The broker requires a user name and password (the rig's `auth` variant with the accounts in `E2E_USERS`): the
agent reads its password from a file, as an installer would set it up, and the station logs in as `station`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from agent.simulator.netns import Lan
from tests.rig.broker import E2E_USERS, Broker

PREFIX = "matthan/v1/xa-e2e/pi-e2e"
WORKER_STARTED = re.compile(r"worker (?P<slot>\d+) started \(pid (?P<pid>\d+)\) for (?P<cams>.+)$")
# agent.app.worker logs this once the event's rows are committed to the outbox (durable from then on);
# the line starts with logsetup's "%(asctime)s" (local time, milliseconds after a comma).
QUEUED = re.compile(r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(?P<ms>\d{3}) \w+ [\w.]+: \[(?P<camera>[^\]]+)\] "
                    r"motion (?P<kind>start|update|end) (?P<event_id>\S+) \(score [^)]*\) queued as (?P<row>\S+)$")
STATION = Path(__file__).with_name("station.py")


@dataclass
class Message:
    t: float
    topic: str
    retain: bool
    text: str | None
    raw: bytes
    props: dict[str, str] = field(default_factory=dict)

    @property
    def seq(self) -> int | None:
        """The outbox sequence number: in the JSON body, or (binary payloads) in the v5 user properties."""
        if "seq" in self.props:
            return int(self.props["seq"])
        if self.text is None or "/cmd/" in self.topic:  # commands come from the station, not the outbox
            return None
        try:
            body = json.loads(self.text)
        except json.JSONDecodeError:
            return None
        value = body.get("seq") if isinstance(body, dict) else None
        return int(value) if value is not None else None

    @property
    def json(self) -> dict[str, Any]:
        assert self.text is not None, f"{self.topic} has a binary payload"
        return json.loads(self.text)

    def sub(self) -> str:
        """The topic below the agent's prefix, e.g. 'cameras/cam-a/status'."""
        return self.topic[len(PREFIX) + 1:] if self.topic.startswith(PREFIX + "/") else self.topic


@dataclass(frozen=True)
class Queued:
    """One motion event record the agent logged as committed to its outbox."""

    t: float  # wall-clock time of the log line
    camera: str
    kind: str  # start, update or end
    event_id: str


@dataclass
class Site:
    lan: Lan
    workdir: Path
    cluster: Any = None
    broker: Broker | None = None
    station: subprocess.Popen[bytes] | None = None
    agent: subprocess.Popen[bytes] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    notify: NotifyListener | None = None

    @property
    def config_path(self) -> Path:
        return self.workdir / "agent.yaml"

    @property
    def station_file(self) -> Path:
        return self.workdir / "station.jsonl"

    @property
    def agent_log(self) -> Path:
        return self.workdir / "agent.log"

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    # -- starting things -------------------------------------------------------------------------------------
    def in_agent_ns(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.lan.run_in(self.lan.agent_ns, fn, *args)

    def start_broker(self) -> Broker:
        self.broker = Broker(self.workdir / "broker", variant="auth", users=dict(E2E_USERS))
        self.in_agent_ns(self.broker.start)
        return self.broker

    def restart_broker(self) -> None:
        assert self.broker is not None
        self.in_agent_ns(self.broker.start)

    def start_station(self, *, retain_as_published: bool = False) -> None:
        """The station subscriber; `retain_as_published`: recorded messages keep the retain flag the agent set."""
        assert self.broker is not None
        argv = [sys.executable, str(STATION), self.broker.host, str(self.broker.port), PREFIX, str(self.station_file)]
        env = dict(os.environ, STATION_USER="station", STATION_PASSWORD=self.broker.users["station"])
        if retain_as_published:
            env["STATION_RETAIN_AS_PUBLISHED"] = "1"
        self.station = self.in_agent_ns(lambda: subprocess.Popen(argv, start_new_session=True, env=env))

    def write_config(self, **overrides: Any) -> None:
        assert self.broker is not None
        password_file = self.workdir / "mqtt-password"
        password_file.write_text(self.broker.users["agent"] + "\n")
        password_file.chmod(0o600)
        cfg: dict[str, Any] = {
            "site_id": "xa-e2e",
            "agent_id": "pi-e2e",
            "mqtt": {"host": self.broker.host, "port": self.broker.port, "keepalive": 10, "username": "agent",
                     "password_file": str(password_file)},
            "discovery": {"interfaces": ["lan0"], "interval_s": 30, "probe_timeout_s": 2,
                          "credentials": [{"username": "admin", "password": "matthan123"}]},
            "motion": {"decode_mode": "adaptive"},
            "storage": {"state_dir": str(self.state_dir)},
            "health": {"interval_s": 10},
            "workers": {"count": 2},
        }
        cfg["health"]["home_assistant"] = {"enabled": True}
        for key, value in overrides.items():
            cfg[key] = value
        self.config = cfg
        self.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))

    def start_agent(self) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "agent", "--log-level", "INFO", "--config", str(self.config_path), "run"]
        if self.notify is None:
            self.notify = NotifyListener(self.workdir / "notify.sock")
        env = dict(os.environ, NOTIFY_SOCKET=str(self.notify.path), WATCHDOG_USEC="2000000")
        env.pop("JOURNAL_STREAM", None)  # keep the timestamps on log lines: `queued()` reads them

        def spawn() -> subprocess.Popen[bytes]:
            log = open(self.agent_log, "ab")  # noqa: SIM115 - handed to the child
            try:
                return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
            finally:
                log.close()

        self.agent = self.in_agent_ns(spawn)
        return self.agent

    def stop_agent(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.agent is None:
            return None
        if self.agent.poll() is None:
            self.agent.send_signal(sig)
        try:
            return self.agent.wait(timeout)
        finally:
            if self.agent.poll() is None:
                _kill_tree(self.agent.pid)

    def kill_agent_group(self, timeout: float = 10.0) -> None:
        """SIGKILL the agent's whole process group at once (supervisor and workers), as a power cut or systemd's
        final kill would: nobody gets to flush or say goodbye."""
        assert self.agent is not None
        os.killpg(self.agent.pid, signal.SIGKILL)  # start_new_session: the group id is the agent's pid
        self.agent.wait(timeout)
        deadline = time.monotonic() + timeout
        while _group_alive(self.agent.pid):
            if time.monotonic() > deadline:
                raise AssertionError(f"agent process group {self.agent.pid} survived SIGKILL")
            time.sleep(0.05)  # polling the kernel's process table, bounded by the deadline

    def close(self) -> None:
        if self.agent is not None and self.agent.poll() is None:
            _kill_tree(self.agent.pid)
        for proc in (self.station,):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(5)
        if self.notify is not None:
            self.notify.close()
        if self.broker is not None:
            self.broker.close()
        if self.cluster is not None:
            self.cluster.close()

    # -- what the station saw ----------------------------------------------------------------------------------
    def messages(self) -> list[Message]:
        if not self.station_file.exists():
            return []
        out = []
        for line in self.station_file.read_text().splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            raw = base64.b64decode(rec["b64"]) if "b64" in rec else rec["text"].encode()
            out.append(Message(rec["t"], rec["topic"], rec["retain"], rec.get("text"), raw, rec.get("props", {})))
        return out

    def latest_status(self) -> dict[str, dict[str, Any]]:
        """camera id -> its latest status payload."""
        latest: dict[str, dict[str, Any]] = {}
        for m in self.messages():
            parts = m.sub().split("/")
            if len(parts) == 3 and parts[0] == "cameras" and parts[2] == "status" and m.text:
                latest[parts[1]] = m.json
        return latest

    def status_history(self, camera: str, since: float = 0.0) -> list[Message]:
        """Every `cameras/<camera>/status` message the station received at or after `since`, in order."""
        topic = f"cameras/{camera}/status"
        return [m for m in self.messages() if m.t >= since and m.sub() == topic and m.text]

    def retained(self, topic_filter: str, *, count: int, timeout: float = 10.0) -> dict[str, Message]:
        """What a station subscribing now is given as retained on `topic_filter` (below the prefix, wildcards
        allowed): topic below the prefix -> message. A fresh connection each call; returns once `count` topics
        arrived (the broker sends stored retained messages right after the SUBACK) or after `timeout`."""
        import threading

        broker = self.broker
        assert broker is not None
        got: dict[str, Message] = {}
        cond = threading.Condition()

        def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            if not reason.is_failure:
                client.subscribe(f"{PREFIX}/{topic_filter}", qos=1)

        def on_message(client: Any, userdata: Any, msg: Any) -> None:
            if not msg.retain:
                return  # published live while we were subscribed: not what the broker holds for a newcomer
            try:
                text: str | None = msg.payload.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            m = Message(time.time(), msg.topic, True, text, bytes(msg.payload))
            with cond:
                got[m.sub()] = m
                cond.notify_all()

        def read() -> None:
            client = broker.client(user="station", connect=False)
            client.on_connect = on_connect
            client.on_message = on_message
            client.connect(broker.host, broker.port, keepalive=10)
            client.loop_start()
            try:
                with cond:
                    cond.wait_for(lambda: len(got) >= count, timeout)
            finally:
                client.loop_stop()
                client.disconnect()

        self.in_agent_ns(read)
        with cond:
            return dict(got)

    def events(self) -> list[dict[str, Any]]:
        return [m.json for m in self.messages() if m.sub() == "events/motion"]

    def health(self) -> list[Message]:
        return [m for m in self.messages() if m.sub() == "health"]

    def queued(self) -> list[Queued]:
        """Every motion record the agent (any run of it on this site) logged as committed to its outbox."""
        out = []
        for line in iter_lines(self.agent_log):
            m = QUEUED.match(line)
            if m:
                t = time.mktime(time.strptime(m["ts"], "%Y-%m-%d %H:%M:%S")) + int(m["ms"]) / 1000
                out.append(Queued(t, m["camera"], m["kind"], m["event_id"]))
        return out

    def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.agent is not None and self.agent.poll() is not None:
                raise AssertionError(f"the agent exited ({self.agent.returncode}) while waiting for {what}:\n"
                                     + self.log_tail())
            time.sleep(0.5)  # polling the station's file, bounded by the deadline
        raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{self.log_tail()}")

    def command(self, name: str, payload: bytes | dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """Publish `cmd/<name>` as the station would and return the agent's answer from `cmd_resp/<name>`."""
        broker = self.broker
        assert broker is not None
        req_id = payload.get("req_id") if isinstance(payload, dict) else None
        body = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        seen = len(self.messages())

        def publish() -> None:
            client = broker.client(user="station")  # connecting, network loop started
            try:
                client.publish(f"{PREFIX}/cmd/{name}", body, qos=1).wait_for_publish(10)
            finally:
                client.loop_stop()
                client.disconnect()

        self.in_agent_ns(publish)

        def answer() -> dict[str, Any] | None:
            for m in self.messages()[seen:]:
                if m.sub() == f"cmd_resp/{name}" and (req_id is None or m.json.get("req_id") == req_id):
                    return m.json
            return None

        return self.wait_for(answer, timeout, f"the answer to {name}")

    def log_tail(self, n: int = 40) -> str:
        if not self.agent_log.exists():
            return "(no agent log)"
        return "\n".join(self.agent_log.read_text(errors="replace").splitlines()[-n:])

    def workers(self) -> dict[int, tuple[int, tuple[str, ...]]]:
        """slot -> (pid, cameras) of the running agent's camera workers, from its log's latest start lines."""
        out: dict[int, tuple[int, tuple[str, ...]]] = {}
        for line in iter_lines(self.agent_log):
            m = WORKER_STARTED.search(line)
            if m:
                out[int(m["slot"])] = (int(m["pid"]), tuple(c.strip() for c in m["cams"].split(",")))
        return {slot: v for slot, v in out.items() if psutil.pid_exists(v[0])}


class NotifyListener:
    """The systemd side of sd_notify: a unix datagram socket collecting what the agent says (READY, WATCHDOG...)."""

    def __init__(self, path: Path) -> None:
        import socket
        import threading

        self.path = path
        self.messages: list[tuple[float, str]] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.time(), data.decode(errors="replace")))

    def lines(self, since: float = 0.0) -> list[str]:
        return [line for t, msg in list(self.messages) if t >= since for line in msg.splitlines()]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


def _kill_tree(pid: int) -> None:
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGKILL)
    psutil.wait_procs(procs, timeout=5)


def crossings(info: Any, since: float, until: float) -> list[tuple[float, float]]:
    """Wall-clock intervals in [since, until] during which a scripted actor moves on camera `info`."""
    gt = info.ground_truth
    loop = gt["loop_s"]
    base = info.anchor  # wall time of this camera's loop time 0 (its phase included)
    out = []
    k = int((since - base) // loop) - 1
    while base + k * loop <= until:
        for actor in gt["actors"]:
            a, b = actor["moving"]
            start, end = base + k * loop + a, base + k * loop + b
            if start >= since and end <= until:
                out.append((start, end))
        k += 1
    return sorted(out)


def _group_alive(pgid: int) -> bool:
    """True while any process (zombies aside) still belongs to process group `pgid`."""
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                return True
    return False


def iter_lines(path: Path) -> Iterator[str]:
    if path.exists():
        yield from path.read_text(errors="replace").splitlines()


def environment_ok() -> str | None:
    """None when this machine can run the end-to-end tests, else why not."""
    if os.geteuid() != 0:
        return "end-to-end tests need root for network namespaces"
    return None


@contextlib.contextmanager
def running_site(workdir: Path, scenario: dict[str, Any], *, retain_as_published: bool = False,
                 **config: Any) -> Iterator[Site]:
    """A simulated village in one namespace; broker, station and `matthan-agent run` in the other (`config`
    overrides the agent's configuration sections). Skips where namespaces or the RTSP server are unavailable;
    everything is stopped at the end."""
    import pytest

    from agent.simulator import parse_scenario
    from agent.simulator.cluster import Cluster
    from agent.simulator.netns import netns_unavailable_reason
    from agent.simulator.rtsp import rtsp_unavailable_reason

    reason = netns_unavailable_reason() or rtsp_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with Lan() as lan:
        s = Site(lan, workdir)
        try:
            s.cluster = Cluster(parse_scenario(scenario), lan=lan).start()
            s.start_broker()
            s.start_station(retain_as_published=retain_as_published)
            s.write_config(**config)
            s.start_agent()
            yield s
        finally:
            s.close()
