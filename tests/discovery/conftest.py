"""Fixtures for discovery tests: an asyncio loop running on a thread inside the agent namespace."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from agent.simulator.netns import Lan

T = TypeVar("T")


class NsLoop:
    """An asyncio loop on a thread that joined a namespace: sockets its coroutines open live there."""

    def __init__(self, lan: Lan, ns: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(self._ready.set)
            self.loop.run_forever()

        self.thread = lan.start_thread(ns, run, name=f"loop-{ns}")
        if not self._ready.wait(10):
            raise RuntimeError("namespace loop did not start")

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def _cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(_cancel_rest(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


@pytest.fixture
def agent_loop(lan: Lan) -> Iterator[NsLoop]:
    """An asyncio loop inside the agent namespace (198.18.0.2 on lan0)."""
    ns_loop = NsLoop(lan, lan.agent_ns)
    try:
        yield ns_loop
    finally:
        ns_loop.close()
