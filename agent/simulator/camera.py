"""One simulated camera: its ONVIF/snapshot HTTP server, WS-Discovery responder, RTSP mounts, clock and faults.

Runs on the cluster's asyncio loop (in the camera namespace in Lan mode). The RTSP side lives in the shared
RTSP host process; this object tells it what to do.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from agent.simulator import onvif, soap
from agent.simulator.encode import EncodedStream, SnapshotStore
from agent.simulator.httpauth import DigestChecker
from agent.simulator.rtsp import RtspHost
from agent.simulator.scenario import CameraSpec, SceneSpec
from agent.simulator.scene import moving_at
from agent.simulator.wsd import Advert, Responder, scope_list

log = logging.getLogger(__name__)

WRONG_HOST = "127.0.0.1"  # what the wrong_host quirk advertises
SUBSCRIPTION_DEFAULT_S = 60.0
MAX_PULL_WAIT_S = 30.0  # cap on a PullMessages long poll, whatever the client asks
MAX_SUBSCRIPTIONS = 8  # cheap cameras have few PullPoint slots
EVENT_TICK_S = 0.1  # how often the camera's own motion detector (the ground truth) is sampled
NS_PORTS = {"onvif": 80, "rtsp": 554, "wsd": 3702}  # in a namespace each camera has its own IP: standard ports


@dataclass
class Subscription:
    sid: int
    expires: float  # monotonic
    messages: list[str] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class SimulatedCamera:
    def __init__(self, spec: CameraSpec, scene: SceneSpec, *, ip: str, loopback: bool, anchor: float,
                 streams: dict[str, EncodedStream], rtsp: RtspHost) -> None:
        self.spec, self.scene, self.ip, self.loopback = spec, scene, ip, loopback
        self.anchor = anchor - spec.phase_s  # wall time at which this camera's loop time is 0
        self.streams, self.rtsp = streams, rtsp
        self.uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"matthan-sim/{spec.name}"))
        self.serial = f"SIM{uuid.UUID(self.uuid).int % 10**9:09d}"
        self.username, self.password = spec.username, spec.password
        self.ports = {k: 0 if loopback else v for k, v in NS_PORTS.items()}
        self.faults: set[str] = set()
        self.down = False  # rebooting or gone
        self.clock_offset = spec.clock_skew_s  # camera clock = wall clock + offset
        self.snapshots = SnapshotStore(streams["main"])
        self._digest = DigestChecker()
        self._runner: web.AppRunner | None = None
        self._wsd: Responder | None = None
        self._subs: dict[int, Subscription] = {}
        self._sub_ids = itertools.count(1)
        self._motion: bool | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.rtsp_registered = False
        self.requests = 0
        self.operations: collections.Counter[str] = collections.Counter()  # SOAP requests by operation name
        self._frozen_frame = 0
        self._pulls_answered = asyncio.Event()  # cleared while the event service stalls (stall_events)
        self._pulls_answered.set()

    # -- identity and addresses -----------------------------------------------------------------------------
    def has_quirk(self, name: str) -> bool:
        return name in self.spec.quirks

    def codec(self, role: str) -> str:
        return self.streams[role].codec

    def advertised_host(self) -> str:
        return WRONG_HOST if self.has_quirk("wrong_host") else self.ip

    def service_base(self) -> str:
        return f"http://{self.advertised_host()}:{self.ports['onvif']}"

    def stream_uri(self, role: str, *, advertised: bool = False) -> str:
        host = self.advertised_host() if advertised else self.ip
        path = self.spec.rtsp_paths[0 if role == "main" else 1]
        return f"rtsp://{host}:{self.ports['rtsp']}{path}"

    def snapshot_uri(self, *, advertised: bool = False) -> str:
        host = self.advertised_host() if advertised else self.ip
        return f"http://{host}:{self.ports['onvif']}/onvif/snapshot.jpg"

    def advert(self) -> Advert:
        raw = self.has_quirk("unescaped_scope_space")
        name = self.spec.name.replace("-", " ") if raw else self.spec.name
        return Advert(endpoint=f"urn:uuid:{self.uuid}", xaddrs=f"{self.service_base()}/onvif/device_service",
                      scopes=scope_list(name, self.spec.hardware, self.spec.location, raw_space=raw),
                      no_wrapper=self.has_quirk("no_probe_matches_wrapper"),
                      duplicate=self.has_quirk("duplicate_probe_match"))

    def camera_now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(time.time() + self.clock_offset, dt.UTC)

    def loop_time(self, when: float | None = None) -> float:
        return ((time.time() if when is None else when) - self.anchor) % self.scene.loop_s

    # -- lifecycle ------------------------------------------------------------------------------------------
    async def start(self, *, announce: bool = True) -> None:
        app = web.Application(client_max_size=soap.MAX_BODY)
        app.router.add_get("/onvif/snapshot.jpg", self._snapshot)
        app.router.add_post("/onvif/{tail:.*}", self._soap)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.ip, self.ports["onvif"], reuse_address=True)
        await site.start()
        self._runner = runner
        if not self.ports["onvif"]:
            self.ports["onvif"] = runner.addresses[0][1]
        self._wsd = Responder(self.advert, self.ip, multicast=not self.loopback, port=self.ports["wsd"])
        self.ports["wsd"] = await self._wsd.start()
        await self._rtsp_up()
        self.down = False
        self._ticker = asyncio.get_running_loop().create_task(self._event_ticker())
        if announce and not self.has_quirk("no_hello"):
            self._wsd.announce("hello")
        log.info("%s: up at %s (onvif %d, rtsp %d, wsd %d)", self.spec.name, self.ip, self.ports["onvif"],
                 self.ports["rtsp"], self.ports["wsd"])

    async def stop(self, *, bye: bool = True) -> None:
        """Take every service down. `bye` sends a WS-Discovery Bye first (clean stop, reboot)."""
        self.down = True
        if self._wsd is not None:
            if bye:
                self._wsd.announce("bye")
            self._wsd.close()
            self._wsd = None
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        for sub in self._subs.values():
            sub.wake.set()
        self._subs.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._rtsp_call(cmd="state", name=self.spec.name, refuse=True, stall=False, freeze=False)

    async def _rtsp_call(self, **cmd: Any) -> dict[str, Any]:
        if not self.rtsp_registered and cmd.get("cmd") != "add":
            return {}
        return await asyncio.get_running_loop().run_in_executor(None, lambda: self.rtsp.command(**cmd))

    async def _rtsp_up(self) -> None:
        if not self.rtsp_registered:
            streams = [{"path": self.spec.rtsp_paths[0], "es": str(self.streams["main"].es_path),
                        "index": str(self.streams["main"].index_path)},
                       {"path": self.spec.rtsp_paths[1], "es": str(self.streams["sub"].es_path),
                        "index": str(self.streams["sub"].index_path)}]
            reply = await self._rtsp_call(cmd="add", name=self.spec.name, anchor=self.anchor, address=self.ip,
                                          port=self.ports["rtsp"], username=self.username, password=self.password,
                                          streams=streams)
            self.rtsp_registered = True
            self.ports["rtsp"] = reply["port"]
        await self._push_rtsp_state()

    async def _push_rtsp_state(self) -> None:
        reply = await self._rtsp_call(cmd="state", name=self.spec.name, refuse="rtsp_refuse" in self.faults,
                                      stall="rtsp_stall" in self.faults, freeze="freeze" in self.faults)
        if reply.get("port", 0) > 0:
            self.ports["rtsp"] = reply["port"]

    # -- faults ---------------------------------------------------------------------------------------------
    async def set_fault(self, fault: str, on: bool) -> None:
        if on:
            if fault == "freeze" and fault not in self.faults:
                self._frozen_frame = self._snapshot_frame()  # snapshots freeze too, on the picture of this moment
            self.faults.add(fault)
        else:
            self.faults.discard(fault)
        if fault == "gone":
            if on and not self.down:
                await self.stop(bye=False)
            elif not on and self.down:
                await self.start()
        elif not self.down:
            await self._push_rtsp_state()

    async def reboot(self, down_s: float, on_down: Callable[[], Awaitable[None]] | None = None) -> None:
        await self.stop(bye=True)
        if on_down is not None:
            await on_down()
        await asyncio.sleep(down_s)
        self.clock_offset = -time.time()  # the RTC has no battery: the clock starts again at 1970-01-01
        await self.start()

    async def move(self, new_ip: str) -> None:
        """New DHCP lease: same endpoint UUID, services rebound on the new address, Hello from there."""
        was_down = self.down
        if not was_down:
            await self.stop(bye=False)
        self.ip = new_ip
        reply = await self._rtsp_call(cmd="move", name=self.spec.name, address=new_ip, port=self.ports["rtsp"])
        if reply.get("port", 0) > 0:
            self.ports["rtsp"] = reply["port"]
        if not was_down:
            await self.start()

    async def change_password(self, password: str) -> None:
        self.password = password
        await self._rtsp_call(cmd="credentials", name=self.spec.name, username=self.username, password=password)

    async def drop_subscriptions(self) -> int:
        """Forget every PullPoint subscription, as a camera does when it reboots or restarts its event service:
        pulls (also those waiting) and Renews on them get a ResourceUnknown fault. How many were dropped."""
        dropped = list(self._subs.values())
        self._subs.clear()
        for sub in dropped:
            sub.wake.set()
        return len(dropped)

    async def stall_events(self, on: bool) -> None:
        """While on, no PullMessages is answered (waiting ones included): the request stays open, as when a
        camera's event service hangs. Subscribe, Renew, Unsubscribe and the other services still answer."""
        if on:
            self._pulls_answered.clear()
        else:
            self._pulls_answered.set()

    # -- motion events (the camera's own detector, driven by the ground truth) ------------------------------
    def motion_now(self) -> bool:
        if "freeze" in self.faults:
            return False
        return moving_at(self.scene, self.loop_time())

    async def _event_ticker(self) -> None:
        while True:
            state = self.motion_now()
            if state != self._motion:
                first = self._motion is None
                self._motion = state
                if not first:
                    msg = onvif.notification(state, self.camera_now(), "Changed")
                    for sub in self._subs.values():
                        sub.messages.append(msg)
                        sub.wake.set()
            now = time.monotonic()
            for sid in [s for s, sub in self._subs.items() if sub.expires < now]:
                del self._subs[sid]
            await asyncio.sleep(EVENT_TICK_S)

    # -- HTTP handlers --------------------------------------------------------------------------------------
    async def _snapshot(self, request: web.Request) -> web.Response:
        self.requests += 1
        if not self._digest.check(request.headers.get("Authorization"), request.method, self.username,
                                  self.password):
            return web.Response(status=401, headers={"WWW-Authenticate": self._digest.challenge()})
        frame = self._frozen_frame if "freeze" in self.faults else self._snapshot_frame()
        return web.Response(body=self.snapshots.jpeg_at_frame(frame), content_type="image/jpeg")

    def _snapshot_frame(self) -> int:
        return int(self.loop_time() * self.snapshots.fps)

    async def _soap(self, request: web.Request) -> web.Response:
        self.requests += 1
        try:
            req = soap.parse_request(await request.read())
            self.operations[req.operation] += 1
            if req.operation not in onvif.PRE_AUTH:
                soap.check_username_token(req, self.username, self.password, self.camera_now())
            body = await self._dispatch(req, request.path)
            return web.Response(body=soap.envelope(body), content_type="application/soap+xml", charset="utf-8")
        except soap.SoapFault as fault:
            return web.Response(status=fault.status, body=soap.fault_xml(fault),
                                content_type="application/soap+xml", charset="utf-8")

    async def _dispatch(self, req: soap.Request, path: str) -> str:
        op = req.operation
        if op in onvif.SIMPLE:
            return onvif.SIMPLE[op](self)
        if op in onvif.WITH_REQUEST:
            return onvif.WITH_REQUEST[op](self, req)
        if op == "GetServiceCapabilities" and path.endswith("events_service"):
            return onvif.events_service_capabilities(self)
        if op == "CreatePullPointSubscription":
            return self._create_pull_point(req)
        if path.startswith("/onvif/subscription/"):
            return await self._subscription_op(req, path)
        raise onvif.unsupported(op)

    def _create_pull_point(self, req: soap.Request) -> str:
        if self.has_quirk("no_pullpoint"):
            raise onvif.unsupported("CreatePullPointSubscription")
        if len(self._subs) >= MAX_SUBSCRIPTIONS:
            raise soap.SoapFault("too many subscriptions", code="s:Receiver",
                                 subcodes=("ter:Action", "ter:MaxPullPointsReached"), status=400)
        term = req.body.findtext("{http://www.onvif.org/ver10/events/wsdl}InitialTerminationTime")
        length = self._term_seconds(term)
        sub = Subscription(next(self._sub_ids), time.monotonic() + length)
        sub.messages.append(onvif.notification(self.motion_now(), self.camera_now(), "Initialized"))
        self._subs[sub.sid] = sub
        now = self.camera_now()
        address = f"{self.service_base()}/onvif/subscription/{sub.sid}"
        return onvif.create_pull_point_response(address, now, now + dt.timedelta(seconds=length))

    def _term_seconds(self, text: str | None) -> float:
        if text and not text.strip().startswith("P"):
            try:  # an absolute time on the camera's clock
                when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
                return max(1.0, (when - self.camera_now()).total_seconds())
            except ValueError:
                return SUBSCRIPTION_DEFAULT_S
        return max(1.0, soap.parse_duration(text, SUBSCRIPTION_DEFAULT_S))

    async def _subscription_op(self, req: soap.Request, path: str) -> str:
        try:
            sub = self._subs[int(path.rsplit("/", 1)[-1])]
        except (ValueError, KeyError):
            raise _unknown_subscription() from None
        op = req.operation
        if op == "PullMessages":
            timeout = soap.parse_duration(
                req.body.findtext("{http://www.onvif.org/ver10/events/wsdl}Timeout"), 10.0)
            limit_text = req.body.findtext("{http://www.onvif.org/ver10/events/wsdl}MessageLimit") or "100"
            limit = max(1, int(limit_text)) if limit_text.strip().isdigit() else 100
            if not sub.messages:
                sub.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(sub.wake.wait(), min(timeout, MAX_PULL_WAIT_S))
            await self._pulls_answered.wait()
            if self._subs.get(sub.sid) is not sub:  # dropped or unsubscribed while the pull waited
                raise _unknown_subscription()
            out, sub.messages[:] = sub.messages[:limit], sub.messages[limit:]
            now = self.camera_now()
            return onvif.pull_messages_response(
                out, now, now + dt.timedelta(seconds=max(0.0, sub.expires - time.monotonic())))
        if op == "Renew":
            length = self._term_seconds(req.body.findtext("{http://docs.oasis-open.org/wsn/b-2}TerminationTime"))
            sub.expires = time.monotonic() + length
            now = self.camera_now()
            return onvif.renew_response(now, now + dt.timedelta(seconds=length))
        if op == "Unsubscribe":
            del self._subs[sub.sid]
            sub.wake.set()
            return "<wsnt:UnsubscribeResponse/>"
        if op == "SetSynchronizationPoint":
            sub.messages.append(onvif.notification(self.motion_now(), self.camera_now(), "Initialized"))
            sub.wake.set()
            return "<tev:SetSynchronizationPointResponse/>"
        raise onvif.unsupported(op)


def _unknown_subscription() -> soap.SoapFault:
    return soap.SoapFault("unknown subscription", code="s:Receiver", subcodes=("wsrf-rw:ResourceUnknownFault",))
