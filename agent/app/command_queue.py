"""The `commands` thread and its bounded queue: MQTT commands wait here and run one at a time.

`enqueue` runs on `mqtt-inbound` and never blocks it: when COMMAND_QUEUE_MAX commands are already waiting, the
station is answered at once with error code `unavailable` and a message starting with `busy`, so it knows nothing
ran and can retry (the req_id is not remembered, so the same one may be sent again). Every answer, ok or not, goes
through the outbox like any other command response.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from agent.commands import CommandDispatcher, CommandResponse, ErrorCode
from agent.commands.schema import parse_request
from agent.mqtt import InboundMessage, Topics, records
from agent.outbox import Outbox

log = logging.getLogger(__name__)

COMMAND_QUEUE_MAX = 32  # commands waiting to run; beyond that the station is told to retry (never unbounded)
GET_POLL_S = 0.5  # the commands thread checks its stop event this often while the queue is empty
BUSY_LOG_EVERY_S = 10.0  # a flood is one warning per 10 s, not one line per refused command
BUSY_MESSAGE = "busy: {n} commands are already waiting; nothing was run, retry later"


def busy_response(name: str, payload: bytes, *, now: float, waiting: int) -> CommandResponse:
    """The immediate answer to a command that found the queue full: the request's own error if it is malformed
    (the same answer it would get later), else `unavailable` with a `busy` message and its req_id."""
    parsed = parse_request(name, payload, now=now)
    if isinstance(parsed, CommandResponse):
        return parsed
    return CommandResponse(name=name, req_id=parsed.req_id, ok=False, error_code=ErrorCode.UNAVAILABLE,
                           error_message=BUSY_MESSAGE.format(n=waiting))


class CommandQueue:
    """Feed with `enqueue` (the MQTT command handler); run `run(stop)` on the `commands` thread."""

    def __init__(self, dispatcher: CommandDispatcher, topics: Topics, outbox: Outbox, *,
                 maxsize: int = COMMAND_QUEUE_MAX, clock: Callable[[], float] = time.time) -> None:
        self.dispatcher, self.topics, self.outbox = dispatcher, topics, outbox
        self._q: queue.Queue[InboundMessage] = queue.Queue(maxsize)
        self._maxsize = maxsize
        self._clock = clock
        self._last_busy_log = -BUSY_LOG_EVERY_S
        self.counters = {"busy": 0}

    def enqueue(self, msg: InboundMessage) -> None:
        try:
            self._q.put_nowait(msg)
            return
        except queue.Full:
            pass
        if msg.retain:
            log.warning("command %s: retained message ignored (commands must not be retained)", msg.topic[-64:])
            return
        name = self.topics.cmd_name(msg.topic) or ""
        self.counters["busy"] += 1
        now = time.monotonic()
        if now - self._last_busy_log >= BUSY_LOG_EVERY_S:
            self._last_busy_log = now
            log.warning("command queue full (%d waiting); answering 'busy' to %s (%d so far)", self._maxsize,
                        name[:64] or msg.topic[-64:], self.counters["busy"])
        self._answer(name, msg, busy_response(name, msg.payload, now=self._clock(), waiting=self._maxsize))

    def run(self, stop: threading.Event) -> None:
        """The thread body: one command at a time until `stop` is set."""
        while not stop.is_set():
            try:
                msg = self._q.get(timeout=GET_POLL_S)
            except queue.Empty:
                continue
            name = self.topics.cmd_name(msg.topic) or ""
            response = self.dispatcher.handle(name, msg.payload, retained=msg.retain)
            if response is not None:
                self._answer(name, msg, response)

    def _answer(self, name: str, msg: InboundMessage, response: CommandResponse) -> None:
        self.outbox.put(records.command_response(self.topics, name or "unknown", response.to_dict(),
                                                 response_topic=msg.response_topic,
                                                 correlation=msg.correlation_data))
