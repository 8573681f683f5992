"""The onvif-zeep-async calls behind camera-side events, kept apart so the pure parts import without it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
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

# The library's own limit is 90 s per call; a camera on weak wifi answers in < 1 s or not at all (5 s per call).
XADDRS_TIMEOUT_S = 20.0  # GetSystemDateAndTime (authless, then authenticated), GetServices, else GetCapabilities
SUBSCRIBE_TIMEOUT_S = 15.0  # the events WSDL (parsed in an executor, slow the first time on a Pi), then
#                             CreatePullPointSubscription. Cut short after the camera answered, the subscription
#                             is lost to us and the camera frees its slot when its lifetime ends.
CLOSE_TIMEOUT_S = 5.0  # Unsubscribe and closing the sessions: a dead camera must not hold up the next attempt


def is_auth_error(exc: BaseException) -> bool:
    """True when the camera rejected our credentials (HTTP 401/403, or a NotAuthorized SOAP fault)."""
    from agent.discovery.policy import classify_fault  # the one classifier of ONVIF faults
    from agent.discovery.results import FailureReason

    return classify_fault(exc) is FailureReason.AUTH_FAILED


class PullPoint:
    """One live PullPoint subscription: pull its messages, renew it. Each call may raise one of EVENT_ERRORS."""

    def __init__(self, cam: ONVIFCamera, pull_service: Any, subscription: Any, lifetime: dt.timedelta) -> None:
        self._cam, self._pull, self._subscription, self._lifetime = cam, pull_service, subscription, lifetime

    async def pull(self, limit: int, timeout_s: float) -> Any:
        """PullMessages: a long poll that answers at the first message or after `timeout_s`."""
        return await self._pull.PullMessages({"MessageLimit": limit, "Timeout": dt.timedelta(seconds=timeout_s)})

    async def renew(self) -> Any:
        """Renew for another lifetime; the camera's TerminationTime (None when it sends none)."""
        # The library's own renewal timer never renews sooner than 48 s (it floors lifetimes at 60 s), so a
        # shorter lifetime would lapse under it: we renew ourselves, with the same relative-or-absolute time
        # the library picked for this camera when it subscribed.
        reply = await self._subscription.Renew(self._cam.get_next_termination_time(self._lifetime))
        return getattr(reply, "TerminationTime", None)


@contextlib.asynccontextmanager
async def open_pullpoint(host: str, port: int, user: str | None, password: str | None,
                         lifetime_s: float) -> AsyncIterator[PullPoint]:
    """A PullPoint subscription for `lifetime_s`, which the caller renews; unsubscribed and closed on exit."""
    cam = ONVIFCamera(host, port, user, password, no_cache=True, adjust_time=True)
    manager = None
    lifetime = dt.timedelta(seconds=lifetime_s)
    try:
        await asyncio.wait_for(cam.update_xaddrs(), XADDRS_TIMEOUT_S)
        # The manager subscribes (choosing relative or absolute termination times for this camera) and
        # unsubscribes; its renewal timer is paused at once, because the caller renews on its own schedule.
        manager = await asyncio.wait_for(cam.create_pullpoint_manager(lifetime, lambda: None), SUBSCRIBE_TIMEOUT_S)
        manager.pause()
        subscription = await asyncio.wait_for(cam.create_subscription_service("PullPointSubscription"),
                                              SUBSCRIBE_TIMEOUT_S)
        yield PullPoint(cam, manager.get_service(), subscription, lifetime)
    finally:
        if manager is not None:
            with contextlib.suppress(*EVENT_ERRORS):
                await asyncio.wait_for(manager.shutdown(), CLOSE_TIMEOUT_S)
        with contextlib.suppress(*EVENT_ERRORS):
            await asyncio.wait_for(cam.close(), CLOSE_TIMEOUT_S)
