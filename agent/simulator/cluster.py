"""A cluster of simulated cameras: one asyncio loop thread for ONVIF, snapshots and WS-Discovery, one RTSP host.

    with Cluster(default_scenario(8), lan=lan) as cluster:      # each camera gets its own IP in the Lan
        cam = cluster.info("cam01")                               # addresses, credentials, URIs, ground truth
        cluster.inject("cam01", "rtsp_stall")                     # faults from tests; clear() ends state faults

    with Cluster(default_scenario(2), loopback=True) as cluster:  # 127.0.0.1, distinct free ports, no multicast

In Lan mode the loop thread joins the camera namespace, so every socket it opens lives there, and the RTSP host
runs there through `ip netns exec`. Stopping the cluster sends Bye (Lan mode), stops every camera and the RTSP
host; the host also dies on its own when this process dies (its stdin closes).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from agent.simulator.camera import SimulatedCamera
from agent.simulator.encode import EncodedStream, encode_stream
from agent.simulator.netns import CAMERA_IF, Lan, NetnsUnavailable, enter_netns_current_thread
from agent.simulator.rtsp import RtspHost, RtspUnavailable, rtsp_unavailable_reason
from agent.simulator.scenario import (
    ACTION_FAULTS,
    STATE_FAULTS,
    CameraSpec,
    Scenario,
    ScenarioError,
    check_fault_args,
)

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 60.0
DEFAULT_REBOOT_DOWN_S = 20.0  # a cheap camera's boot time; tests pass less


class ControlError(ScenarioError):
    """A control call named an unknown camera or fault, or bad arguments; nothing was changed."""


@dataclass(frozen=True)
class CameraInfo:
    """Everything a test needs to reach one camera, as it is right now."""

    name: str
    ip: str
    onvif_port: int
    rtsp_port: int
    wsd_port: int
    username: str
    password: str
    endpoint: str  # urn:uuid:..., stable across reboots and IP changes
    xaddr: str  # the true device service URL (not the quirky advertised one)
    main_uri: str
    sub_uri: str
    snapshot_uri: str
    quirks: frozenset[str]
    faults: frozenset[str]
    down: bool
    anchor: float  # wall time at which this camera's loop time is 0
    ground_truth: dict[str, Any]  # see scene.ground_truth(); periodic in ground_truth["loop_s"]

    def truth_between(self, since: float, until: float) -> list[dict[str, Any]]:
        """Actor crossings and light/IR events overlapping [since, until) in Unix seconds (see scene.wall_intervals)."""
        from agent.simulator.scene import wall_intervals

        return wall_intervals(self.ground_truth, self.anchor, since, until)

    def rtsp_uri(self, role: str = "sub", *, with_credentials: bool = False) -> str:
        uri = self.main_uri if role == "main" else self.sub_uri
        if with_credentials:
            uri = uri.replace("rtsp://", f"rtsp://{self.username}:{self.password}@", 1)
        return uri


class Cluster:
    def __init__(self, scenario: Scenario, *, lan: Lan | None = None, loopback: bool = False,
                 anchor: float | None = None) -> None:
        if (lan is None) == (not loopback):
            raise ValueError("give exactly one of lan=Lan(...) or loopback=True")
        self.scenario, self.lan, self.loopback = scenario, lan, loopback
        self._fixed_anchor = anchor
        self.anchor = time.time() if anchor is None else anchor  # reset by start() once the scenes are encoded
        self.cameras: dict[str, SimulatedCamera] = {}
        self.rtsp: RtspHost | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self._next_loopback_host = 2
        self._started = False

    # -- lifecycle ------------------------------------------------------------------------------------------
    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> Cluster:
        reason = rtsp_unavailable_reason()
        if reason:
            raise RtspUnavailable(reason)
        streams = {cam.name: self._encode(cam) for cam in self.scenario.cameras}
        if self._fixed_anchor is None:
            self.anchor = time.time()  # loop time 0 and scheduled faults count from here, not from encoding
        try:
            if self.lan is not None:
                # Deleting a primary address deletes its secondaries unless promoted: a camera that leaves or
                # moves must not take the other cameras' addresses with it.
                self.lan.run(self.lan.camera_ns, ["sysctl", "-q", "-w", "net.ipv4.conf.all.promote_secondaries=1",
                                                  f"net.ipv4.conf.{CAMERA_IF}.promote_secondaries=1"], check=True,
                             capture_output=True)
            self.rtsp = RtspHost(netns=self.lan.camera_ns if self.lan else None)
            self._start_loop()
            for spec in self.scenario.cameras:
                ip = self.lan.add_camera_ip() if self.lan else "127.0.0.1"
                cam = SimulatedCamera(spec, self.scenario.scenes[spec.scene], ip=ip, loopback=self.loopback,
                                      anchor=self.anchor, streams=streams[spec.name], rtsp=self.rtsp)
                self.cameras[spec.name] = cam
                self._run(cam.start())
            for fault in self.scenario.faults:
                self._spawn(self._scheduled(fault.camera, fault.fault, fault.at_s, fault.duration_s,
                                            dict(fault.args)))
            self._started = True
        except BaseException:
            self.close()
            raise
        return self

    def _encode(self, spec: CameraSpec) -> dict[str, EncodedStream]:
        scene = self.scenario.scenes[spec.scene]
        main_codec = "h265" if "h265_main" in spec.quirks else "h264"
        return {
            "main": encode_stream(scene, fps=spec.fps, keyframe_s=spec.keyframe_s, size=spec.main,
                                  codec=main_codec, role="main"),
            "sub": encode_stream(scene, fps=spec.fps, keyframe_s=spec.keyframe_s, size=spec.sub, role="sub"),
        }

    def _start_loop(self) -> None:
        ready = threading.Event()
        box: dict[str, BaseException] = {}

        def run() -> None:
            try:
                if self.lan is not None:
                    enter_netns_current_thread(self.lan.camera_ns)
                loop = asyncio.new_event_loop()
                self._loop = loop
            except BaseException as exc:
                box["error"] = exc
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="sim-cluster", daemon=True)
        self._thread.start()
        ready.wait(30)
        if "error" in box:
            raise box["error"]

    def close(self) -> None:
        """Stop every camera (Bye in Lan mode), the RTSP host and the loop thread. Safe to call twice."""
        loop = self._loop
        if loop is not None and loop.is_running():
            for task in list(self._tasks):
                loop.call_soon_threadsafe(task.cancel)
            for cam in self.cameras.values():
                if not cam.down:
                    try:
                        self._run(cam.stop(bye=True), timeout=15)
                    except (concurrent.futures.TimeoutError, OSError, RuntimeError) as exc:
                        log.warning("%s: did not stop cleanly: %s", cam.spec.name, exc)
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(10)
        self._loop = None
        if self.rtsp is not None:
            self.rtsp.close()
            self.rtsp = None
        if self.lan is not None:
            for cam in self.cameras.values():
                if cam.ip in self.lan.camera_ips:
                    try:
                        self.lan.remove_camera_ip(cam.ip)
                    except NetnsUnavailable as exc:  # the namespace may already be gone
                        log.warning("%s: could not remove %s: %s", cam.spec.name, cam.ip, exc)
        self._started = False

    def pids(self) -> list[int]:
        """Processes this cluster started (the RTSP host); the rest runs in the caller's process."""
        return [self.rtsp.pid] if self.rtsp is not None else []

    # -- running things on the loop -------------------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, Any], timeout: float = CALL_TIMEOUT_S) -> Any:
        assert self._loop is not None, "cluster not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        assert self._loop is not None
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        self._tasks.add(fut)  # type: ignore[arg-type]
        fut.add_done_callback(self._tasks.discard)  # type: ignore[arg-type]

    # -- inspection -----------------------------------------------------------------------------------------
    def camera(self, name: str) -> SimulatedCamera:
        try:
            return self.cameras[name]
        except KeyError:
            raise ControlError(f"unknown camera {name!r}; cameras are: {', '.join(self.cameras)}") from None

    def names(self) -> list[str]:
        return list(self.cameras)

    def info(self, name: str) -> CameraInfo:
        cam = self.camera(name)
        return CameraInfo(
            name=name, ip=cam.ip, onvif_port=cam.ports["onvif"], rtsp_port=cam.ports["rtsp"],
            wsd_port=cam.ports["wsd"], username=cam.username, password=cam.password,
            endpoint=f"urn:uuid:{cam.uuid}", xaddr=f"http://{cam.ip}:{cam.ports['onvif']}/onvif/device_service",
            main_uri=cam.stream_uri("main"), sub_uri=cam.stream_uri("sub"), snapshot_uri=cam.snapshot_uri(),
            quirks=cam.spec.quirks, faults=frozenset(cam.faults), down=cam.down, anchor=cam.anchor,
            ground_truth=cam.streams["sub"].ground_truth(),
        )

    def infos(self) -> list[CameraInfo]:
        return [self.info(n) for n in self.cameras]

    def wait_up(self, name: str, timeout: float = 60.0) -> CameraInfo:
        """Block until the camera serves again (after a reboot); raises TimeoutError."""
        deadline = time.monotonic() + timeout
        cam = self.camera(name)
        while cam.down:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} still down after {timeout} s")
            time.sleep(0.05)
        return self.info(name)

    # -- event-service controls (tests) ---------------------------------------------------------------------
    def drop_subscriptions(self, name: str) -> int:
        """The camera forgets its PullPoint subscriptions (pulls and Renews then get ResourceUnknown); how many."""
        cam = self.camera(name)
        return int(self._run(cam.drop_subscriptions()))

    def stall_events(self, name: str, on: bool = True) -> None:
        """While on, the camera answers no PullMessages (the requests stay open); everything else answers."""
        cam = self.camera(name)
        self._run(cam.stall_events(on))

    # -- faults ---------------------------------------------------------------------------------------------
    def inject(self, name: str, fault: str, **args: Any) -> CameraInfo:
        """Start a fault now. State faults last until clear(); reboot returns once the camera is down."""
        cam = self.camera(name)
        try:
            check_fault_args(f"fault {fault} for {name}", fault, args)
        except ScenarioError as exc:
            raise ControlError(str(exc)) from None
        self._run(self._apply(cam, fault, args))
        return self.info(name)

    def clear(self, name: str, fault: str) -> CameraInfo:
        cam = self.camera(name)
        if fault not in STATE_FAULTS:
            raise ControlError(f"{fault!r} cannot be cleared; state faults are: {', '.join(STATE_FAULTS)} "
                               f"(actions {', '.join(ACTION_FAULTS)} happen once)")
        self._run(self._clear(cam, fault))
        return self.info(name)

    async def _apply(self, cam: SimulatedCamera, fault: str, args: dict[str, Any]) -> None:
        if fault == "gone":
            if "gone" in cam.faults:
                return
            await cam.set_fault("gone", True)
            if self.lan is not None and cam.ip in self.lan.camera_ips:
                await self._off_loop(self.lan.remove_camera_ip, cam.ip)
        elif fault in STATE_FAULTS:
            await cam.set_fault(fault, True)
        elif fault == "reboot":
            await cam.stop(bye=True)
            self._spawn(self._boot(cam, float(args.get("down_s", DEFAULT_REBOOT_DOWN_S))))
        elif fault == "new_ip":
            await self._new_ip(cam, args.get("ip"))
        elif fault == "password_change":
            await cam.change_password(args["password"])

    async def _clear(self, cam: SimulatedCamera, fault: str) -> None:
        if fault == "gone" and "gone" in cam.faults and self.lan is not None and cam.ip not in self.lan.camera_ips:
            await self._off_loop(self.lan.add_camera_ip, cam.ip)
        await cam.set_fault(fault, False)

    async def _boot(self, cam: SimulatedCamera, down_s: float) -> None:
        await asyncio.sleep(down_s)
        cam.clock_offset = -time.time()  # the RTC has no battery: the clock starts again at 1970-01-01
        await cam.start()

    async def _new_ip(self, cam: SimulatedCamera, ip: str | None) -> None:
        old = cam.ip
        if self.lan is not None:
            new = await self._off_loop(self.lan.add_camera_ip, ip)
        else:
            if ip is not None and not ip.startswith("127."):
                raise ControlError(f"loopback cameras can only move inside 127.0.0.0/8, not to {ip}")
            new = ip or f"127.0.0.{self._next_loopback_host}"
            self._next_loopback_host += 1
        await cam.move(new)
        if self.lan is not None:
            await self._off_loop(self.lan.remove_camera_ip, old)

    async def _off_loop(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def _scheduled(self, name: str, fault: str, at_s: float, duration_s: float | None,
                         args: dict[str, Any]) -> None:
        await asyncio.sleep(max(0.0, self.anchor + at_s - time.time()))
        cam = self.cameras[name]
        log.info("%s: scheduled fault %s", name, fault)
        await self._apply(cam, fault, args)
        if duration_s is not None:
            await asyncio.sleep(duration_s)
            log.info("%s: scheduled fault %s cleared", name, fault)
            await self._clear(cam, fault)
