"""`matthan-agent demo`: a local broker, a simulated village cluster, the agent against it, and the station's view.

Start order: private LAN (namespace mode) -> simulated cameras -> broker -> console subscriber -> agent.
Stop order is the reverse, each step attempted even when an earlier one failed: the agent (SIGTERM, bounded wait,
SIGKILL, then its process group), the subscriber, the broker, the cameras and their RTSP host, the namespaces.
Signals only set a flag (gunicorn's habit) once everything runs; during start-up they interrupt it, and what had
started is stopped the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from agent.demo import procs
from agent.demo.broker import BrokerError, LocalBroker
from agent.demo.config import TOPIC_PREFIX, DemoCamera, agent_config, config_yaml
from agent.demo.console import Console, Header, render_screen
from agent.demo.nsthread import NsThread
from agent.demo.scenario import demo_scenario
from agent.demo.station import Station

log = logging.getLogger(__name__)

EX_OK, EX_FAILED, EX_UNAVAILABLE = 0, 1, 69
REFRESH_S = 1.0  # the live table is redrawn once a second; plain lines are printed as soon as they come
PLAIN_POLL_S = 0.2  # plain mode: how soon a station line is printed after it arrived
AGENT_STOP_GRACE_S = 15.0  # the agent promises to stop within 10 s of SIGTERM (issue 8); then SIGKILL
KEEP_RUNS = 5  # demo directories kept under .demo/ (older ones are deleted when a new demo starts)


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM during start-up (a BaseException, like KeyboardInterrupt, so nothing swallows it)."""


@dataclass(frozen=True)
class DemoOptions:
    cameras: int = 6
    duration_s: float | None = None  # stop by itself after this long once everything runs; None: until Ctrl-C
    loopback: bool = False
    plain: bool = False
    demo_dir: Path | None = None


@dataclass
class Summary:
    mode: str = ""
    cameras: int = 0
    online_at_end: int = 0
    ever_online: int = 0
    event_starts: int = 0
    event_ends: int = 0
    snapshots: int = 0
    snapshot_dir: str = ""
    agent_exit: int | None = None
    problems: list[str] = dataclasses.field(default_factory=list)


def default_demo_dir(cwd: Path) -> Path:
    """`.demo/<time>` in a checkout of this project (git-ignored), else a new temporary directory."""
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file() and 'name = "matthan-agent"' in pyproject.read_text(errors="replace"):
        base = cwd / ".demo"
        base.mkdir(exist_ok=True)
        runs = sorted(p for p in base.iterdir() if p.is_dir() and p.name.startswith("run-"))
        for old in runs[: max(0, len(runs) - (KEEP_RUNS - 1))]:
            _remove_tree(old)
        # A unique suffix: two demos started in the same second must not share an outbox.
        return Path(tempfile.mkdtemp(prefix=time.strftime("run-%Y%m%d-%H%M%S-"), dir=base))
    return Path(tempfile.mkdtemp(prefix="matthan-demo-"))


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


class Demo:
    def __init__(self, opts: DemoOptions, console: Console) -> None:
        self.opts, self.console = opts, console
        self.stop = threading.Event()
        self.starting = True
        self.summary = Summary(cameras=opts.cameras)
        self.lan: Any = None
        self.cluster: Any = None
        self.ns: NsThread | None = None
        self.broker: LocalBroker | None = None
        self.station: Station | None = None
        self.agent: subprocess.Popen[bytes] | None = None
        self.dir = Path()
        self.broker_desc = self.pids_desc = ""

    # -- signals ---------------------------------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set()
        if self.starting:
            self.starting = False  # one interruption is enough; a second signal must not break the clean-up
            raise Interrupted(signum)

    # -- the whole run ------------------------------------------------------------------------------------------------
    def run(self) -> int:
        # SIGHUP too: closing the terminal window must stop everything as cleanly as Ctrl-C does.
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        rc = EX_FAILED
        try:
            self._start()
            self.starting = False
            rc = self._watch()
        except Interrupted as exc:
            signum = int(exc.args[0])
            self.console.say(f"demo: {signal.Signals(signum).name} during start-up; stopping what had started")
            rc = 128 + signum  # the shell's convention for "ended by this signal"
        except _StartError as exc:
            self.console.say(f"demo: cannot start: {exc}")
            rc = exc.code
        finally:
            self.starting = False
            self.console.close()
            self._teardown()
            for s, handler in old.items():
                signal.signal(s, handler)
        self._print_summary()
        if rc == EX_OK and self.summary.problems:
            rc = EX_FAILED
        return rc

    # -- start-up ---------------------------------------------------------------------------------------------------
    def _start(self) -> None:
        from agent.simulator.cluster import Cluster
        from agent.simulator.encode import EncodeUnavailable
        from agent.simulator.netns import Lan, NetnsUnavailable, netns_unavailable_reason, remove_stale_namespaces
        from agent.simulator.rtsp import RtspHostError, RtspUnavailable

        self.dir = (self.opts.demo_dir or default_demo_dir(Path.cwd())).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        _log_to_file(self.dir / "demo.log", quiet=self.console.live)
        say = self.console.say
        say(f"demo: files in {self.dir}")
        reason = None if self.opts.loopback else netns_unavailable_reason()
        if reason:
            say(f"demo: network namespaces unavailable ({reason}); using loopback mode instead")
        if not self.opts.loopback and not reason:
            removed = remove_stale_namespaces()
            if removed:
                say(f"demo: removed namespaces left by an earlier run that died: {', '.join(removed)}")
            try:
                self.lan = Lan()  # assigned before open(): an interruption half-way is still cleaned up
                self.lan.open()
            except NetnsUnavailable as exc:
                say(f"demo: cannot create the private LAN ({exc}); using loopback mode instead")
                self.lan = None
        if self.lan is not None:
            self.summary.mode = ("namespace mode: the agent finds the cameras by WS-Discovery on a private LAN "
                                 f"(netns {self.lan.agent_ns} <-> {self.lan.camera_ns}, 198.18.0.0/24)")
        else:
            self.summary.mode = ("loopback mode: cameras on 127.0.0.1; discovery is off and the config lists each "
                                 "camera's RTSP url")
        say(f"demo: {self.summary.mode}")
        say(f"demo: starting {self.opts.cameras} simulated cameras (the first run encodes the village scenes: "
            "about a minute; later runs reuse them)")
        self.cluster = Cluster(demo_scenario(self.opts.cameras), lan=self.lan, loopback=self.lan is None)
        try:
            self.cluster.start()
        except (RtspUnavailable, EncodeUnavailable) as exc:
            raise _StartError(f"the camera simulator cannot run here: {exc}", EX_UNAVAILABLE) from None
        except RtspHostError as exc:
            raise _StartError(f"the simulated cameras' RTSP host failed: {exc}", EX_FAILED) from None
        infos = self.cluster.infos()
        self.ns = NsThread(self.lan.agent_ns if self.lan is not None else None)
        self.broker = LocalBroker(self.dir / "broker")
        try:
            port = self._in_ns(self.broker.start)
        except BrokerError as exc:
            raise _StartError(str(exc), EX_UNAVAILABLE) from None
        cameras = [DemoCamera(i.name, None if self.lan is not None else i.rtsp_uri("sub", with_credentials=True))
                   for i in infos]
        config_path = self._write_config(port, cameras)
        self.station = Station(prefix=TOPIC_PREFIX, snapshot_dir=self.dir / "snapshots")
        try:
            self._in_ns(self.station.connect, port)
        except (OSError, TimeoutError) as exc:
            raise _StartError(f"the console could not subscribe to the demo's broker: {exc}", EX_FAILED) from None

        def start_agent() -> None:
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            self.agent = procs.spawn([sys.executable, "-m", "agent", "--config", str(config_path), "run"],
                                     log_path=self.dir / "agent.log", env=env)

        self._in_ns(start_agent)
        assert self.agent is not None and self.broker.pid is not None
        where = f" in namespace {self.lan.agent_ns}" if self.lan is not None else ""
        self.broker_desc = f"127.0.0.1:{port}{where}"
        rtsp = ",".join(map(str, self.cluster.pids())) or "-"
        self.pids_desc = f"broker {self.broker.pid}, agent {self.agent.pid}, rtsp host {rtsp}"
        say(f"demo: pids broker={self.broker.pid} agent={self.agent.pid} rtsp-host={rtsp}")
        if self.lan is not None:
            say(f"demo: namespaces {self.lan.agent_ns} {self.lan.camera_ns}")
        say(f"demo: broker {self.broker_desc}; agent config {config_path}; agent log {self.dir / 'agent.log'}")
        stop_how = f"stops by itself after {self.opts.duration_s:g} s" if self.opts.duration_s else "Ctrl-C stops it"
        say(f"demo: running; {stop_how}")

    def _in_ns(self, fn: Callable[..., Any], *args: Any) -> Any:
        assert self.ns is not None
        return self.ns.call(fn, *args)

    def _write_config(self, port: int, cameras: list[DemoCamera]) -> Path:
        from agent.config.loader import validate_data

        data = agent_config(broker_port=port, state_dir=str(self.dir / "state"), cameras=cameras,
                            discovery=self.lan is not None)
        validate_data(data)  # a demo that writes a config its own agent refuses is a bug: fail here, loudly
        path = self.dir / "agent.yaml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # camera passwords inside
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(config_yaml(data, mode="namespace mode" if self.lan is not None else "loopback mode"))
        return path

    # -- watching -----------------------------------------------------------------------------------------------------
    def _watch(self) -> int:
        assert self.station is not None and self.agent is not None
        started = time.monotonic()
        deadline = started + self.opts.duration_s if self.opts.duration_s else None
        header = Header(mode=self.summary.mode, broker=self.broker_desc, pids=self.pids_desc, demo_dir=str(self.dir),
                        agent_log=str(self.dir / "agent.log"), cameras=self.opts.cameras, started=started)
        interval = REFRESH_S if self.console.live else PLAIN_POLL_S
        rc = EX_OK
        while True:
            now = time.monotonic()
            screen = self.station.read(lambda v, t=now: render_screen(v, header, t)) if self.console.live else []
            self.console.update(screen, self.station.take_lines())
            if self.agent.poll() is not None:
                self.console.say(f"demo: the agent stopped by itself (exit code {self.agent.returncode}); "
                                 f"its log: {self.dir / 'agent.log'}")
                self._print_log_tail()
                rc = EX_FAILED
                break
            if self.stop.is_set() or (deadline is not None and now >= deadline):
                break
            wait = interval if deadline is None else max(0.0, min(interval, deadline - now))
            self.stop.wait(wait)
        self.console.close()
        self.console.update([], self.station.take_lines())
        self.summary.online_at_end = self.station.read(lambda v: v.online_count())
        return rc

    def _drain_station(self) -> None:
        """After the agent stopped: print what it sent while stopping (events it closed), then count."""
        if self.station is None:
            return
        self.console.update([], self.station.take_lines())
        s = self.summary
        s.ever_online, s.event_starts, s.event_ends, s.snapshots = self.station.read(
            lambda v: (len(v.ever_online), v.event_starts, v.event_ends, len(v.snapshots)))

    def _print_log_tail(self, lines: int = 15) -> None:
        path = self.dir / "agent.log"
        with contextlib.suppress(OSError):
            for line in path.read_text(errors="replace").splitlines()[-lines:]:
                self.console.say(f"  | {line}")

    # -- stopping -----------------------------------------------------------------------------------------------------
    def _teardown(self) -> None:
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("wait for start-up calls", lambda: self.ns and self.ns.call(lambda: None)),
            ("stop the agent", self._stop_agent),
            ("read the agent's last messages", self._drain_station),
            ("close the console subscriber", lambda: self.station and self.station.close()),
            ("stop the broker", lambda: self.broker and self.broker.stop()),
            ("end the namespace thread", lambda: self.ns and self.ns.close()),
            ("stop the simulated cameras", lambda: self.cluster and self.cluster.close()),
            ("remove the private LAN", lambda: self.lan and self.lan.close()),
        ]
        for what, step in steps:
            try:
                step()
            except Exception as exc:  # keep going: every later step still has something to stop
                log.exception("demo: could not %s", what)
                self.summary.problems.append(f"could not {what}: {exc}")

    def _stop_agent(self) -> None:
        if self.agent is None:
            return
        if self.agent.poll() is None:
            self.console.say(f"demo: stopping the agent (pid {self.agent.pid}, SIGTERM; "
                             f"at most {AGENT_STOP_GRACE_S:.0f} s)")
        self.summary.agent_exit = procs.stop(self.agent, name="agent", grace_s=AGENT_STOP_GRACE_S)

    def _print_summary(self) -> None:
        s, say = self.summary, self.console.say
        if not s.mode:
            return
        say("")
        say("demo summary")
        say(f"  mode: {s.mode}")
        say(f"  cameras online: {s.online_at_end}/{s.cameras} at the end ({s.ever_online} online at some point)")
        say(f"  motion events: {s.event_starts} started, {s.event_ends} ended")
        say(f"  snapshots saved: {s.snapshots} in {self.dir / 'snapshots'}")
        exit_text = "not started" if s.agent_exit is None else str(s.agent_exit)
        say(f"  agent exit code: {exit_text}; logs: {self.dir / 'agent.log'}, {self.dir / 'demo.log'}")
        for p in s.problems:
            say(f"  problem: {p}")
        if not s.problems:
            say("  everything the demo started has stopped")


class _StartError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _log_to_file(path: Path, *, quiet: bool) -> None:
    """Everything the demo process logs goes to `path`; the terminal keeps warnings only, none under a live screen."""
    from agent.logsetup import SECRETS, RedactingFormatter

    root = logging.getLogger()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", SECRETS))
    handler.setLevel(logging.INFO)
    for h in root.handlers:
        if getattr(h, "_matthan", False):
            h.setLevel(logging.CRITICAL + 1 if quiet else logging.WARNING)
    root.addHandler(handler)
    root.setLevel(min(root.level or logging.INFO, logging.INFO))


def run_demo(opts: DemoOptions, out: Any = None) -> int:
    return Demo(opts, Console(out or sys.stdout, plain=opts.plain)).run()
