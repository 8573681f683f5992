"""Camera interrogation in a short-lived helper process, so that the daemon never holds the SOAP stack.

zeep, lxml, aiohttp and the parsed ONVIF WSDLs cost a process about 35 MB (scripts/bench/agent.py), and the daemon
would keep them for months for work that takes seconds: a round every five minutes, a Hello now and then. So the
daemon's discovery loop (WS-Discovery itself is plain UDP and stays in the daemon) hands each interrogation to a
helper process, started with `spawn` on the first request and ended after `idle_s` without one; its memory goes
back to the system when it exits. With rounds more frequent than every RESIDENT_BELOW_S the helper stays up
instead, since restarting it each round would cost more CPU than its memory is worth. One-shot commands
(`discover`, `doctor`) interrogate in their own process.

Protocol, pickled over a duplex pipe between two copies of this module: the daemon sends
`(request_id, settings, budget_spec, device)`, the helper answers `(request_id, Interrogation)`; closing the pipe
ends the helper. The helper shares the credential budget through its file in the state dir (FileAuthBudget reads
the file before every decision), so no login attempt escapes the 3-per-10-minutes rule by changing process. A
helper that dies or hangs fails its pending requests as `timeout` rows (the daemon keeps a running stream on those)
and the next request starts a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from agent.discovery.policy import AuthBudget
from agent.discovery.results import Discovered, FailureReason, Interrogation
from agent.discovery.settings import DiscoverySettings
from agent.logsetup import SECRETS, setup_logging
from agent.models import CameraInfo

log = logging.getLogger(__name__)

IDLE_S = 30.0  # s without a request before the helper exits: a round's Hellos and retries arrive well within it
RESIDENT_BELOW_S = 120.0  # s; with rounds this frequent the helper stays up: starting it costs ~1.5 s of CPU here
#                           (~10 s on a Pi 4) each time, more than its memory is worth between such rounds
START_ALLOWANCE_S = 60.0  # s a fresh helper may take to import zeep and parse the WSDLs (a Pi 4 under load)
PROCESS_NAME = "matthan-onvif"
_PR_SET_NAME = 15  # prctl option: the 15-character name `ps -o comm` shows

BudgetSpec = tuple[str | None, int, float]  # (file path or None for memory, attempts, window_s)
Interrogator = Callable[[Discovered], Awaitable[Interrogation]]


def idle_timeout_for(round_interval_s: float) -> float | None:
    """How long the helper may sit idle before it exits, given the discovery round interval; None: never."""
    return None if round_interval_s < RESIDENT_BELOW_S else IDLE_S


def budget_spec(budget: AuthBudget | None, settings: DiscoverySettings) -> BudgetSpec:
    """What the helper needs to use the same budget: its file (when it has one) and its limits."""
    if budget is None:
        return None, settings.auth_attempts, settings.auth_window_s
    path = getattr(budget, "path", None)
    return (str(path) if path is not None else None), budget.attempts, budget.window_s


def failed_row(device: Discovered, detail: str) -> Interrogation:
    info = CameraInfo(camera_id="", endpoint_uuid=device.endpoint_uuid, ip=device.ip, name=device.name,
                      location=device.location, hardware_id=device.hardware, xaddr=device.xaddr,
                      error=FailureReason.TIMEOUT.value)
    return Interrogation(info, ok=False, reason=FailureReason.TIMEOUT, detail=detail, discovered=device)


class InterrogationHelper:
    """The daemon's side: interrogations in a helper process, for one asyncio loop (the ONVIF thread's)."""

    def __init__(self, *, idle_s: float | None = IDLE_S, log_level: int | None = None) -> None:
        self.idle_s = idle_s  # None: the helper stays up once started (see idle_timeout_for)
        self.started = 0  # helpers started so far (health, tests)
        self._log_level = log_level
        self._proc: Any = None  # multiprocessing.process.BaseProcess
        self._conn: Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[int, tuple[asyncio.Future[Interrogation], Discovered]] = {}
        self._next_id = 0
        self._idle: asyncio.TimerHandle | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def interrogator(self, settings: DiscoverySettings, budget: AuthBudget | None) -> Interrogator:
        """Same shape as agent.discovery.onvif.make_interrogator's result; the helper limits concurrency."""
        spec = budget_spec(budget, settings)

        async def one(device: Discovered) -> Interrogation:
            return await self.interrogate(device, settings, spec)

        return one

    async def interrogate(self, device: Discovered, settings: DiscoverySettings, spec: BudgetSpec) -> Interrogation:
        loop = asyncio.get_running_loop()
        fresh = self._ensure(loop)
        rid, self._next_id = self._next_id, self._next_id + 1
        future: asyncio.Future[Interrogation] = loop.create_future()
        self._pending[rid] = (future, device)
        self._cancel_idle()
        assert self._conn is not None
        try:
            self._conn.send((rid, settings, spec, device))
        except (OSError, ValueError) as exc:
            self._gone(f"the interrogation helper is gone ({exc})")
        # The helper bounds each interrogation by camera_timeout_s; this bound is for a helper that hangs.
        limit = settings.camera_timeout_s * 2 + (START_ALLOWANCE_S if fresh else 5.0)
        try:
            return await asyncio.wait_for(asyncio.shield(future), limit)
        except TimeoutError:
            log.error("the interrogation helper gave no answer for %s in %.0f s; stopping it", device.ip, limit)
            self._gone(f"no answer from the interrogation helper within {limit:.0f} s")
            return future.result()
        finally:
            self._pending.pop(rid, None)
            self._schedule_idle()

    async def close(self) -> None:
        """End the helper (daemon shutdown); pending requests fail."""
        self._cancel_idle()
        self._gone("the daemon is stopping")

    # -- the process ---------------------------------------------------------------------------------------------
    def _ensure(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Start a helper unless one runs; True when this call started it."""
        if self.running and self._conn is not None:
            return False
        self._gone("the interrogation helper died")  # a dead one's leftovers, if any
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe(duplex=True)
        level = self._log_level if self._log_level is not None else logging.getLogger().getEffectiveLevel()
        proc = ctx.Process(target=helper_main, args=(child, level, SECRETS.snapshot()), name=PROCESS_NAME, daemon=True)
        proc.start()
        child.close()
        self._proc, self._conn, self._loop = proc, parent, loop
        self.started += 1
        loop.add_reader(parent.fileno(), self._readable)
        log.debug("interrogation helper started (pid %s)", proc.pid)
        return True

    def _readable(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            while conn.poll():
                rid, result = conn.recv()
                entry = self._pending.get(rid)
                if entry is not None and not entry[0].done():
                    entry[0].set_result(result)
        except (EOFError, OSError) as exc:
            self._gone(f"the interrogation helper died ({type(exc).__name__})")

    def _gone(self, why: str) -> None:
        """Forget the helper (stopping it if it still runs) and fail what it had not answered."""
        conn, proc, self._conn, self._proc = self._conn, self._proc, None, None
        if conn is not None:
            if self._loop is not None:
                with contextlib.suppress(ValueError, OSError):
                    self._loop.remove_reader(conn.fileno())
            conn.close()  # the helper reads EOF and exits
        if proc is not None:
            proc.join(0.5)
            if proc.is_alive():
                proc.kill()
                proc.join(2.0)
        for future, device in list(self._pending.values()):
            if not future.done():
                future.set_result(failed_row(device, f"{why}; the camera is asked again at the next round"))

    def _cancel_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _schedule_idle(self) -> None:
        if self._pending or self._conn is None or self._loop is None or self.idle_s is None:
            return
        self._cancel_idle()
        self._idle = self._loop.call_later(self.idle_s, self._idle_out)

    def _idle_out(self) -> None:
        self._idle = None
        if not self._pending:
            log.debug("interrogation helper idle for %.0f s; stopping it", self.idle_s)
            self._gone("the interrogation helper was idle")


# -- the helper process ----------------------------------------------------------------------------------------
def helper_main(conn: Connection, log_level: int, secrets: frozenset[str]) -> None:
    """Entry point of the helper process (spawned): serve requests until the daemon closes the pipe."""
    with contextlib.suppress(OSError, AttributeError):  # recognisable in `ps -o comm` and `top`, as the workers are
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NAME, PROCESS_NAME.encode(), 0, 0, 0)
    SECRETS.add(secrets)
    setup_logging(log_level)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(conn))


async def _serve(conn: Connection) -> None:
    from agent.discovery.auth_store import FileAuthBudget
    from agent.discovery.onvif import make_interrogator, warm_up

    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Any] = asyncio.Queue()

    def readable() -> None:
        try:
            while conn.poll():
                inbox.put_nowait(conn.recv())
        except (EOFError, OSError):
            loop.remove_reader(conn.fileno())
            inbox.put_nowait(None)

    loop.add_reader(conn.fileno(), readable)
    budgets: dict[BudgetSpec, AuthBudget] = {}
    current: tuple[DiscoverySettings, BudgetSpec, Interrogator] | None = None
    tasks: set[asyncio.Task[None]] = set()
    await warm_up()

    async def answer(rid: int, one: Interrogator, device: Discovered) -> None:
        try:
            result = await one(device)
        except Exception as exc:  # interrogate() reports device trouble in its result; anything else is a bug
            log.exception("interrogation of %s failed", device.ip)
            result = failed_row(device, f"interrogation failed inside the helper ({type(exc).__name__})")
        with contextlib.suppress(OSError, ValueError):
            conn.send((rid, result))

    while (msg := await inbox.get()) is not None:
        rid, settings, spec, device = msg
        if current is None or current[0] != settings or current[1] != spec:
            budget = budgets.get(spec)
            if budget is None:
                path, attempts, window_s = spec
                budget = budgets[spec] = (FileAuthBudget(Path(path), attempts, window_s) if path is not None
                                          else AuthBudget(attempts, window_s))
            current = (settings, spec, make_interrogator(settings, budget))
        task = asyncio.create_task(answer(rid, current[2], device))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    for task in list(tasks):
        task.cancel()
