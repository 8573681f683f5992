"""A thread-safe collector of pipeline callbacks that tests can wait on without sleeping."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Collector(Generic[T]):
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.items: list[tuple[float, T]] = []

    def __call__(self, item: T) -> None:
        with self._cond:
            self.items.append((time.monotonic(), item))
            self._cond.notify_all()

    def values(self) -> list[T]:
        with self._cond:
            return [v for _, v in self.items]

    def wait_for(self, predicate: Callable[[T], bool], timeout: float, *, after: float = 0.0) -> T | None:
        """The first item received after monotonic time `after` matching `predicate`, waiting up to `timeout` s."""
        def found() -> T | None:
            return next((v for t, v in self.items if t >= after and predicate(v)), None)

        with self._cond:
            self._cond.wait_for(lambda: found() is not None, timeout)
            return found()
