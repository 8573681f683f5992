"""One long-lived thread that lives in the agent's network namespace (or the root one, in loopback mode).

On Linux the network namespace belongs to a thread, and what a thread creates inherits it: child processes, new
threads, sockets. So the broker, the agent and the console's MQTT client are all started through `NsThread.call`
and all see the same 127.0.0.1 and the cameras over the veth. The thread stays alive until `close()`, because the
children's PR_SET_PDEATHSIG (agent.demo.procs) fires when the thread that started them ends.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any, TypeVar

from agent.simulator.netns import enter_netns_current_thread

T = TypeVar("T")
CALL_TIMEOUT_S = 60.0  # the slowest call is the broker's start (10 s deadline, a few attempts)


class NsThread:
    def __init__(self, netns: str | None) -> None:
        self.netns = netns
        init: Callable[..., object] | None = enter_netns_current_thread if netns else None
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="demo-ns", initializer=init, initargs=(netns,) if netns else ())

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = CALL_TIMEOUT_S) -> T:
        """Run `fn(*args)` on the namespace thread and return its result (or raise its error)."""
        return self._pool.submit(fn, *args).result(timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
