"""Running commands: validate, answer a repeated req_id once, call the daemon's operation, never let an error out.

The dispatcher knows nothing about MQTT or the daemon's internals: the daemon hands it a `CommandOps` of plain
callables, and sends whatever `handle()` returns on `cmd_resp/<name>`. Each operation returns a small JSON-able
dict for the response's `result`, or raises `CommandFailed` with a code and a message for the station.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from agent.commands.schema import (
    CommandRequest,
    CommandResponse,
    ErrorCode,
    SetCameraArgs,
    SnapshotArgs,
    fail,
    parse_request,
)

log = logging.getLogger(__name__)

SEEN_REQ_IDS = 1024  # req_ids remembered for "answered once"; at a command a minute that is 17 hours of history

Result = dict[str, Any]


class CommandFailed(Exception):
    """An operation could not be done; `code` and `message` go into the response as they are."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class CommandOps:
    """What the daemon provides. An operation left as None is answered `unavailable`.

    - `camera_ids()`: the cameras this agent knows (for `unknown_camera`).
    - `rediscover()`: start a discovery run now; result e.g. `{"started": true}`.
    - `snapshot(camera)`: grab a fresh JPEG and queue it through the outbox; result e.g. `{"msg_id": ...}`.
    - `status()`: the agent's current status and health summary.
    - `reload_config()`: re-read the configuration (as SIGHUP does); result e.g. `{"cameras": n}`.
    - `rebirth()`: re-publish every retained topic; result e.g. `{"republished": n}`.
    - `set_camera(camera, enabled)`: enable or disable a camera at run time.
    """

    camera_ids: Callable[[], Collection[str]]
    rediscover: Callable[[], Result] | None = None
    snapshot: Callable[[str], Result] | None = None
    status: Callable[[], Result] | None = None
    reload_config: Callable[[], Result] | None = None
    rebirth: Callable[[], Result] | None = None
    set_camera: Callable[[str, bool], Result] | None = None


class CommandDispatcher:
    """`handle(name, payload, retained=...)` → the response to publish, or None when nothing must be sent
    (a retained message, or a req_id already answered). Thread-safe; operations run on the caller's thread."""

    def __init__(self, ops: CommandOps, *, clock: Callable[[], float] = time.time, remember: int = SEEN_REQ_IDS):
        self._ops = ops
        self._clock = clock
        self._remember = remember
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()
        self.counters: dict[str, int] = {"handled": 0, "ok": 0, "errors": 0, "ignored_retained": 0, "repeated": 0}

    def handle(self, name: str, payload: bytes, *, retained: bool = False) -> CommandResponse | None:
        if retained:
            # A retained command would run again on every reconnect; the contract says they are ignored.
            log.warning("command %s: retained message ignored (commands must not be retained)", name[:64])
            self._count("ignored_retained")
            return None
        parsed = parse_request(name, payload, now=self._clock())
        if isinstance(parsed, CommandRequest) and not self._first_time(parsed.name, parsed.req_id):
            log.info("command %s: req_id %s already answered; not run again", name, parsed.req_id)
            self._count("repeated")
            return None
        response = parsed if isinstance(parsed, CommandResponse) else self._run(parsed)
        self._count("handled")
        self._count("ok" if response.ok else "errors")
        if not response.ok:
            log.info("command %s req_id=%s refused: %s: %s", name[:64], response.req_id, response.error_code,
                     response.error_message)
        return response

    def _first_time(self, name: str, req_id: str) -> bool:
        key = (name, req_id)
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return False
            self._seen[key] = None
            while len(self._seen) > self._remember:
                self._seen.popitem(last=False)
            return True

    def _count(self, what: str) -> None:
        with self._lock:
            self.counters[what] += 1

    def _run(self, req: CommandRequest) -> CommandResponse:
        try:
            result = self._call(req)
        except CommandFailed as exc:
            return fail(req.name, req.req_id, exc.code, exc.message)
        except Exception:  # an operation's bug must not take the commands thread down; the station hears of it
            log.exception("command %s req_id=%s: operation raised", req.name, req.req_id)
            message = "internal error while running the command; see the agent log"
            return fail(req.name, req.req_id, ErrorCode.FAILED, message)
        return CommandResponse(name=req.name, req_id=req.req_id, ok=True, result=dict(result or {}))

    def _call(self, req: CommandRequest) -> Result:
        ops = self._ops
        args = req.args
        if isinstance(args, SnapshotArgs | SetCameraArgs):
            known = ops.camera_ids()
            if args.camera not in known:
                raise CommandFailed(ErrorCode.UNKNOWN_CAMERA, f"no camera named {args.camera!r} on this agent")
        op = getattr(ops, req.name)
        if op is None:
            raise CommandFailed(ErrorCode.UNAVAILABLE, f"command {req.name!r} is not available on this agent")
        if isinstance(args, SetCameraArgs):
            return op(args.camera, args.enabled)
        if isinstance(args, SnapshotArgs):
            return op(args.camera)
        return op()
