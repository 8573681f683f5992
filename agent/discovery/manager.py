"""The daemon's discovery loop: a round every `interval_s`, and an immediate re-interrogation on Hello.

Runs as a task on the ONVIF thread's asyncio loop. A Hello means a camera appeared or rebooted (and, cheap
cameras being what they are, probably reset its clock), so it is interrogated at once, which re-measures the
clock; a Bye is reported so the status machine can say "leaving" instead of waiting for the stream to stall.
After a reload, `recheck` sends the cameras whose interrogation failed down the same road, with the new settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
from collections.abc import Awaitable, Callable, Iterable

from agent.discovery.auth_store import budget_for
from agent.discovery.inventory import Inventory
from agent.discovery.policy import AuthBudget
from agent.discovery.results import Discovered, Interrogation, Via, WsdEvent, WsdEventKind
from agent.discovery.service import DiscoveryReport, InterrogatorFactory, discover_once
from agent.discovery.settings import DiscoverySettings
from agent.discovery.wsd import HelloListener
from agent.models import CameraInfo

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 300.0  # a full round every 5 minutes; Hello covers the gaps for cameras that send it
MAX_PENDING_HELLOS = 64  # a Hello storm (40 cameras after a power cut) is bounded; extras wait for the next round


class DiscoveryState(enum.Enum):
    IDLE = "idle"
    ROUND = "round"  # probing and interrogating
    STOPPED = "stopped"


class DiscoveryManager:
    """Owns the inventory's updates. Callbacks run on the loop thread and must only enqueue."""

    def __init__(
        self,
        settings: DiscoverySettings,
        inventory: Inventory,
        *,
        on_report: Callable[[DiscoveryReport], None],
        on_interrogation: Callable[[Interrogation], None] | None = None,
        on_bye: Callable[[str, WsdEvent], None] | None = None,
        interval_s: float = DEFAULT_INTERVAL_S,
        budget: AuthBudget | None = None,
        interrogator: InterrogatorFactory | None = None,
    ) -> None:
        self.settings = settings
        # The daemon passes agent.discovery.remote's helper; without one, interrogation runs on this loop.
        self.interrogator = interrogator
        self.inventory = inventory
        # Kept beside the inventory (the state dir), so a restart does not give every camera 3 fresh attempts.
        self.budget = budget if budget is not None else budget_for(
            settings, inventory.path.parent if inventory.path is not None else None)
        self.interval_s = interval_s
        self.state = DiscoveryState.IDLE
        self.rounds = 0
        self.errors = 0  # rounds that failed outright (e.g. no interface); counted for health
        self._on_report = on_report
        self._on_interrogation = on_interrogation
        self._on_bye = on_bye
        self._hellos: asyncio.Queue[WsdEvent] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; returns promptly after it is."""
        self._hellos = asyncio.Queue(MAX_PENDING_HELLOS)
        listener = None
        if self.settings.listen_hello:
            listener = HelloListener(self._heard)
            try:
                await listener.start()
            except OSError as exc:
                log.warning("not listening for WS-Discovery Hello/Bye (%s); relying on periodic probes", exc)
                listener = None
        hello_task = asyncio.create_task(self._serve_hellos(stop))
        try:
            while not stop.is_set():
                await self._round()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval_s)
        finally:
            self.state = DiscoveryState.STOPPED
            hello_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hello_task
            if listener is not None:
                listener.close()

    async def _round(self) -> None:
        self.state = DiscoveryState.ROUND
        try:
            report = await self.round_once()
        except (OSError, ValueError) as exc:
            self.errors += 1
            log.error("discovery round failed: %s", exc)
            return
        finally:
            self.state = DiscoveryState.IDLE
        self.rounds += 1
        self._on_report(report)

    async def round_once(self) -> DiscoveryReport:
        """One round with this manager's settings, inventory, budget and interrogator (also for `rediscover`)."""
        return await discover_once(self.settings, inventory=self.inventory, budget=self.budget,
                                   interrogator=self.interrogator)

    def _make_interrogator(self, settings: DiscoverySettings) -> Callable[[Discovered], Awaitable[Interrogation]]:
        if self.interrogator is not None:
            return self.interrogator(settings, self.budget)
        from agent.discovery.onvif import make_interrogator  # the SOAP stack, only when used here

        return make_interrogator(settings, self.budget)

    def _heard(self, event: WsdEvent) -> None:
        if event.kind is WsdEventKind.BYE:
            entry = next((e for e in self.inventory.entries()
                          if event.endpoint_uuid and e.info.endpoint_uuid == event.endpoint_uuid), None)
            if entry is not None and self._on_bye is not None:
                self._on_bye(entry.camera_id, event)
            return
        if self._hellos is not None and event.device is not None:
            try:
                self._hellos.put_nowait(event)
            except asyncio.QueueFull:
                log.info("Hello from %s dropped (queue full); the next round will find it", event.source_ip)

    def recheck(self, cameras: Iterable[CameraInfo]) -> None:
        """Interrogate these known cameras now, as if each had sent a Hello (loop thread only). After a reload brought
        new credentials or camera entries, a camera whose interrogation failed need not wait for the next round."""
        for info in cameras:
            if info.ip and info.xaddr:
                dev = Discovered(ip=info.ip, xaddr=info.xaddr, via=Via.TARGET, endpoint_uuid=info.endpoint_uuid,
                                 name=info.name)
                self._heard(WsdEvent(WsdEventKind.HELLO, dev.ip, dev.endpoint_uuid, "", dev))

    async def _serve_hellos(self, stop: asyncio.Event) -> None:
        """Interrogate each announced camera at once, several at a time (a power cut brings 40 Hellos together)."""
        assert self._hellos is not None
        settings = self.settings
        one = self._make_interrogator(settings)
        running: set[asyncio.Task[None]] = set()

        async def handle(device: Discovered) -> None:
            result = await one(device)
            override = self.settings.override_for(device.ip, device.endpoint_uuid, device.name)
            update = self.inventory.update(result.info, configured_name=override.name if override else None)
            try:
                self.inventory.save()
            except OSError as exc:  # disk full or read-only state dir: keep running on the in-memory inventory
                self.errors += 1
                log.error("cannot save the camera inventory: %s", exc)
            if self._on_interrogation is not None:
                named = dataclasses.replace(result.info, camera_id=update.entry.camera_id)
                self._on_interrogation(dataclasses.replace(result, info=named))

        try:
            while not stop.is_set():
                event = await self._hellos.get()
                if self.settings is not settings:  # reloaded: interrogate with the new credentials and entries
                    settings = self.settings
                    one = self._make_interrogator(settings)
                if event.device is not None:
                    task = asyncio.create_task(handle(event.device))
                    running.add(task)
                    task.add_done_callback(running.discard)
        finally:
            for task in running:
                task.cancel()
