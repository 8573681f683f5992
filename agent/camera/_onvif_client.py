"""The onvif-zeep-async calls behind camera-side events, kept apart so the pure parts import without it."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import zeep.exceptions

# Quirk of onvif-zeep-async 4.3: importing onvif.client calls logging.basicConfig(level=INFO), which adds an
# unredacted stderr handler to the root logger when logging is not set up yet. Remove whatever it added.
_root_handlers = list(logging.getLogger().handlers)
from onvif import ONVIFCamera  # noqa: E402
from onvif.exceptions import ONVIFError  # noqa: E402

for _h in logging.getLogger().handlers:
    if _h not in _root_handlers:
        logging.getLogger().removeHandler(_h)

# What a PullPoint session can raise: SOAP faults and garbage (zeep), the library refusing (ONVIFError), the
# network (aiohttp, OSError) and our own timeouts around each call.
EVENT_ERRORS = (zeep.exceptions.Error, ONVIFError, aiohttp.ClientError, OSError, TimeoutError, AttributeError)


@contextlib.asynccontextmanager
async def open_pullpoint(host: str, port: int, user: str | None, password: str | None, lifetime_s: float,
                         lost: Callable[[], None]) -> AsyncIterator[Any]:
    """A PullPoint service with a renewed subscription; unsubscribed and closed on exit."""
    cam = ONVIFCamera(host, port, user, password, no_cache=True, adjust_time=True)
    manager = None
    try:
        await cam.update_xaddrs()
        manager = await cam.create_pullpoint_manager(dt.timedelta(seconds=lifetime_s), lost)
        yield manager.get_service()
    finally:
        if manager is not None:
            with contextlib.suppress(*EVENT_ERRORS):
                await manager.shutdown()
        with contextlib.suppress(*EVENT_ERRORS):
            await cam.close()
