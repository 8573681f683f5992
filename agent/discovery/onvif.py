"""ONVIF interrogation with onvif-zeep-async: who the camera is, which stream to watch, whether events work.

All cameras share one asyncio loop (the ONVIF thread's). The library caches parsed WSDLs per process;
`warm_up()` fills that cache once, before any concurrency, so 40 cameras do not parse them 40 times.

One interrogation, in order (each call under `call_timeout_s`, the whole under `camera_timeout_s`):
1. unauthenticated GetSystemDateAndTime: proves ONVIF answers, and measures the camera's clock. The offset is
   applied to every WS-Security timestamp (the library's adjust_time), measured afresh on every interrogation,
   i.e. on every reconnect, because cheap cameras reset their clock to 1970 when they reboot;
2. GetDeviceInformation, once per credential (the camera's own, then the configured sets in order), within the
   AuthBudget of 3 attempts per camera per 10 minutes, so we never trigger a camera's lockout (the daemon's budget
   is kept in the state dir, agent.discovery.auth_store, so a restart does not grant 3 more);
3. GetServices, falling back to GetCapabilities; every returned host is rewritten to the address we reached;
4. GetProfiles, GetStreamUri for the chosen substream, GetSnapshotUri;
5. CreatePullPointSubscription with a 60 s lifetime, then Unsubscribe at once: cheap cameras have 2-5
   subscription slots, so a leaked one costs at most a minute.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import zeep.exceptions

from agent.discovery.inventory import arp_mac
from agent.discovery.parse import replace_host, strip_userinfo
from agent.discovery.policy import AuthBudget, auth_key, choose_substream, classify_fault
from agent.discovery.results import Discovered, FailureReason, Interrogation, Profile
from agent.discovery.settings import CameraOverride, Credential, DiscoverySettings
from agent.logsetup import camera_logger
from agent.models import CameraInfo

# Quirk of onvif-zeep-async 4.3: importing onvif.client calls logging.basicConfig(level=INFO), which adds an
# unredacted stderr handler to the root logger when logging is not set up yet. Remove whatever it added.
_root_handlers = list(logging.getLogger().handlers)
from onvif import ONVIFCamera  # noqa: E402
from onvif.definition import SERVICES  # noqa: E402
from onvif.exceptions import ONVIFError  # noqa: E402

for _h in logging.getLogger().handlers:
    if _h not in _root_handlers:
        logging.getLogger().removeHandler(_h)

__all__ = ["AuthBudget", "choose_substream", "classify_fault", "interrogate", "interrogate_all", "make_interrogator",
           "warm_up"]
log = logging.getLogger(__name__)
T = TypeVar("T")

# The exceptions each ONVIF operation may raise, named once. zeep.exceptions.Error covers Fault (SOAP fault),
# TransportError (HTTP status), XMLSyntaxError/XMLParseError (garbage reply); aiohttp.ClientError and OSError
# are the network; ONVIFError is the library refusing (unknown service, bad WSDL path); TimeoutError is ours.
NETWORK_ERRORS = (aiohttp.ClientError, OSError)
CALL_ERRORS = (zeep.exceptions.Error, ONVIFError, *NETWORK_ERRORS, TimeoutError)
CLOCK_ERRORS = CALL_ERRORS  # GetSystemDateAndTime (unauthenticated)
AUTH_CHECK_ERRORS = CALL_ERRORS  # GetDeviceInformation
SERVICES_ERRORS = CALL_ERRORS  # GetServices / GetCapabilities
MEDIA_ERRORS = CALL_ERRORS  # GetProfiles / GetStreamUri / GetSnapshotUri
EVENTS_ERRORS = CALL_ERRORS  # CreatePullPointSubscription / Unsubscribe
# Walking a zeep reply whose optional fields are absent.
SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError)

PULLPOINT_PROBE_LIFETIME = "PT60S"  # if Unsubscribe is lost, the camera frees the slot after a minute
NS_DEVICE = SERVICES["devicemgmt"]["ns"]
NS_MEDIA = SERVICES["media"]["ns"]
NS_EVENTS = SERVICES["events"]["ns"]
NS_PULLPOINT_SUB = f"{NS_EVENTS}/PullPointSubscription"


class _Camera(ONVIFCamera):
    """ONVIFCamera whose device service lives at the XAddr discovery found.

    Quirk: the library assumes /onvif/device_service; some OEM firmwares (Dahua/XMeye clones) serve it at
    other paths or ports, which their XAddrs tell us.
    """

    def __init__(self, device_xaddr: str, user: str | None, passwd: str | None) -> None:
        parts = urlsplit(device_xaddr)
        super().__init__(parts.hostname or "", parts.port or 80, user, passwd, no_cache=True, adjust_time=True)
        self.device_xaddr = device_xaddr

    def get_definition(self, name: str, port_type: str | None = None) -> tuple[str, str, str]:
        xaddr, wsdl, binding = super().get_definition(name, port_type)
        return (self.device_xaddr if name == "devicemgmt" else xaddr), wsdl, binding


_warm_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()
_warm_done = False


async def warm_up() -> None:
    """Parse every WSDL we use once (in the library's executor) before cameras are interrogated concurrently.

    No traffic: services are only constructed, against an address nothing is sent to.
    """
    global _warm_done
    if _warm_done:
        return
    lock = _warm_locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock:
        if _warm_done:
            return
        cam = _Camera("http://127.0.0.1:9/onvif/device_service", None, None)
        cam.xaddrs = {NS_MEDIA: "http://127.0.0.1:9/", NS_EVENTS: "http://127.0.0.1:9/",
                      NS_PULLPOINT_SUB: "http://127.0.0.1:9/"}
        try:
            await cam.create_devicemgmt_service()
            await cam.create_media_service()
            await cam.create_events_service()
            await cam.create_subscription_service("PullPointSubscription")
        finally:
            await cam.close()
        _warm_done = True


def _get(obj: Any, *path: str) -> Any:
    """Follow attribute names through a zeep reply; None as soon as one is missing."""
    for name in path:
        if obj is None:
            return None
        obj = getattr(obj, name, None) if not isinstance(obj, dict) else obj.get(name)
    return obj


def _str(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


class _Failed(Exception):
    def __init__(self, reason: FailureReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _credentials(settings: DiscoverySettings, override: CameraOverride | None) -> list[Credential | None]:
    creds: list[Credential | None] = []
    if override and override.credential:
        creds.append(override.credential)
    creds.extend(c for c in settings.credentials if c not in creds)
    return creds or [None]  # no credentials at all: try anonymous (some cameras allow it)


async def interrogate(
    device: Discovered,
    settings: DiscoverySettings,
    budget: AuthBudget,
    override: CameraOverride | None = None,
) -> Interrogation:
    """Interrogate one camera. Never raises for device trouble: the failure is in the result."""
    await warm_up()
    label = device.name or device.ip
    clog = camera_logger(log, label)
    state: dict[str, Any] = {"attempts": 0, "skew": None, "profiles": (), "user": None}
    base = CameraInfo(
        camera_id="", endpoint_uuid=device.endpoint_uuid, ip=device.ip, name=device.name,
        location=device.location, hardware_id=device.hardware, xaddr=device.xaddr,
    )
    try:
        info = await asyncio.wait_for(_interrogate(device, settings, budget, override, base, state),
                                      settings.camera_timeout_s)
    except _Failed as exc:
        clog.warning("interrogation failed: %s (%s)", exc.reason.value, exc.detail)
        auth = "failed" if exc.reason in (FailureReason.AUTH_FAILED, FailureReason.CLOCK_SKEW) else base.auth
        if state["user"]:
            auth = "ok"
        info = dataclasses.replace(base, auth=auth, error=exc.reason.value, mac=arp_mac(device.ip))
        return Interrogation(info, False, exc.reason, exc.detail, state["attempts"], state["skew"],
                             state["profiles"], state["user"], device)
    except TimeoutError:
        detail = f"no complete answer within {settings.camera_timeout_s:g} s"
        clog.warning("interrogation failed: timeout (%s)", detail)
        info = dataclasses.replace(base, auth="ok" if state["user"] else "unknown", error=FailureReason.TIMEOUT.value)
        return Interrogation(info, False, FailureReason.TIMEOUT, detail, state["attempts"], state["skew"],
                             state["profiles"], state["user"], device)
    clog.info("interrogated: %s %s, substream %sx%s %s, events %s", info.manufacturer, info.model,
              info.stream_width, info.stream_height, info.stream_encoding, info.events_supported)
    return Interrogation(info, True, None, "", state["attempts"], state["skew"], state["profiles"], state["user"],
                         device)


async def _call(coro: Awaitable[T], timeout_s: float) -> T:
    return await asyncio.wait_for(coro, timeout_s)


async def _interrogate(
    device: Discovered,
    settings: DiscoverySettings,
    budget: AuthBudget,
    override: CameraOverride | None,
    base: CameraInfo,
    state: dict[str, Any],
) -> CameraInfo:
    timeout = settings.call_timeout_s
    key = auth_key(device)
    dt_diff = await _measure_clock(device, timeout, state)
    cam: _Camera | None = None
    devinfo = None
    last_error: _Failed | None = None
    try:
        for cred in _credentials(settings, override):
            if not budget.take(key):
                wait = budget.retry_after_s(key)
                raise last_error or _Failed(
                    FailureReason.AUTH_FAILED,
                    f"no credential attempt left ({budget.attempts} per {budget.window_s:g} s); retry in {wait:.0f} s",
                )
            state["attempts"] += 1
            cam = _Camera(device.xaddr, cred.user if cred else None, cred.password if cred else None)
            cam.dt_diff = dt_diff
            try:
                devmgmt = await cam.create_devicemgmt_service()
                devinfo = await _call(devmgmt.GetDeviceInformation(), timeout)
                budget.succeeded(key)
                state["user"] = cred.user if cred else ""
                break
            except AUTH_CHECK_ERRORS as exc:
                reason = classify_fault(exc)
                await cam.close()
                cam = None
                if reason not in (FailureReason.AUTH_FAILED, FailureReason.CLOCK_SKEW):
                    raise _Failed(reason, f"GetDeviceInformation: {_short(exc)}") from None
                budget.failed(key)  # the persisted budget is written on rejections (and the success clearing them)
                who = f"user {cred.user!r}" if cred else "no credentials"
                last_error = _Failed(reason, f"{who} refused: {_short(exc)}")
                if budget.remaining(key) == 0:
                    break
        if cam is None or devinfo is None:
            raise last_error or _Failed(FailureReason.AUTH_FAILED, "no credential accepted")
        info = dataclasses.replace(
            base,
            manufacturer=_str(_get(devinfo, "Manufacturer")),
            model=_str(_get(devinfo, "Model")),
            firmware=_str(_get(devinfo, "FirmwareVersion")),
            serial=_str(_get(devinfo, "SerialNumber")),
            hardware_id=_str(_get(devinfo, "HardwareId")) or base.hardware_id,
            auth="ok",
        )
        await _load_xaddrs(cam, device.ip, timeout)
        info = await _media(cam, device.ip, settings, override, info, state)
        if settings.check_events:
            info = dataclasses.replace(info, events_supported=await _pullpoint_works(cam, device.ip, timeout))
        return dataclasses.replace(info, mac=arp_mac(device.ip), error=None)
    finally:
        if cam is not None:
            await cam.close()


async def _measure_clock(device: Discovered, timeout: float, state: dict[str, Any]) -> dt.timedelta | None:
    """Unauthenticated GetSystemDateAndTime: is ONVIF there, and how far off is the camera's clock?"""
    cam = _Camera(device.xaddr, None, None)
    try:
        devmgmt = await cam.create_devicemgmt_service()
        reply = await _call(devmgmt.authless_GetSystemDateAndTime(), timeout)
    except zeep.exceptions.Fault as exc:
        if exc.code is None and not exc.subcodes:
            # zeep's "Unknown fault occured": the answer was XML but no SOAP fault (a web page, a router).
            raise _Failed(FailureReason.NO_ONVIF_ANSWER, "the HTTP answer is not SOAP") from None
        return None  # this camera wants auth even for its clock (allowed, though the spec says otherwise)
    except zeep.exceptions.TransportError as exc:
        if exc.status_code in (401, 403):
            return None  # quirk: some Hikvision firmwares demand HTTP digest auth for every call, this one too
        raise _Failed(FailureReason.NO_ONVIF_ANSWER, f"GetSystemDateAndTime: HTTP {exc.status_code}") from None
    except CLOCK_ERRORS as exc:
        raise _Failed(classify_fault(exc) if isinstance(exc, TimeoutError) else FailureReason.NO_ONVIF_ANSWER,
                      f"GetSystemDateAndTime: {_short(exc)}") from None
    finally:
        await cam.close()
    utc = _get(reply, "UTCDateTime")
    try:
        cam_time = dt.datetime(
            int(_get(utc, "Date", "Year")), int(_get(utc, "Date", "Month")), int(_get(utc, "Date", "Day")),
            int(_get(utc, "Time", "Hour")), int(_get(utc, "Time", "Minute")), int(_get(utc, "Time", "Second")),
            tzinfo=dt.UTC,
        )
    except SHAPE_ERRORS:
        return None  # no UTC time in the reply: sign with our own clock and hope the camera is in sync
    diff = cam_time - dt.datetime.now(dt.UTC)
    state["skew"] = round(diff.total_seconds(), 1)
    if abs(diff.total_seconds()) > 5:
        camera_logger(log, device.name or device.ip).info("camera clock is %+.0f s off; compensating",
                                                          diff.total_seconds())
    return diff


async def _load_xaddrs(cam: _Camera, reached_ip: str, timeout: float) -> None:
    """GetServices, else GetCapabilities; every service host rewritten to the address we reached."""
    devmgmt = await cam.create_devicemgmt_service()
    xaddrs: dict[str, str] = {}
    try:
        services = await _call(devmgmt.GetServices({"IncludeCapability": False}), timeout)
        for svc in services or []:
            ns, addr = _str(_get(svc, "Namespace")), _str(_get(svc, "XAddr"))
            if ns and addr:
                xaddrs[ns] = addr
    except SERVICES_ERRORS as exc:
        if isinstance(exc, TimeoutError):
            raise _Failed(FailureReason.TIMEOUT, "GetServices timed out") from None
        log.debug("%s: GetServices failed (%s); trying GetCapabilities", reached_ip, _short(exc))
    if NS_MEDIA not in xaddrs:
        try:
            caps = await _call(devmgmt.GetCapabilities({"Category": "All"}), timeout)
        except SERVICES_ERRORS as exc:
            raise _Failed(classify_fault(exc), f"GetCapabilities: {_short(exc)}") from None
        for name in ("Media", "Events", "Device"):
            addr = _str(_get(caps, name, "XAddr"))
            if addr:
                xaddrs[SERVICES[name.lower() if name != "Device" else "devicemgmt"]["ns"]] = addr
    cam.xaddrs = {ns: replace_host(addr, reached_ip) or addr for ns, addr in xaddrs.items()}


async def _media(
    cam: _Camera,
    reached_ip: str,
    settings: DiscoverySettings,
    override: CameraOverride | None,
    info: CameraInfo,
    state: dict[str, Any],
) -> CameraInfo:
    timeout = settings.call_timeout_s
    if NS_MEDIA not in cam.xaddrs:
        raise _Failed(FailureReason.UNSUPPORTED, "no ONVIF media service (not a video camera?)")
    try:
        media = await cam.create_media_service()
        raw_profiles = await _call(media.GetProfiles(), timeout)
    except MEDIA_ERRORS as exc:
        raise _Failed(classify_fault(exc), f"GetProfiles: {_short(exc)}") from None
    profiles = tuple(_profile(p) for p in raw_profiles or [])
    state["profiles"] = profiles
    min_width = (override.substream_min_width if override else None) or settings.substream_min_width
    chosen = choose_substream(profiles, min_width, override.profile_token if override else None)
    if chosen is None:
        raise _Failed(FailureReason.UNSUPPORTED, "the camera has no media profile")
    setup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
    try:
        reply = await _call(media.GetStreamUri({"StreamSetup": setup, "ProfileToken": chosen.token}), timeout)
    except MEDIA_ERRORS as exc:
        raise _Failed(classify_fault(exc), f"GetStreamUri: {_short(exc)}") from None
    snapshot = None
    try:
        snap = await _call(media.GetSnapshotUri({"ProfileToken": chosen.token}), timeout)
        snapshot = _str(_get(snap, "Uri"))
    except MEDIA_ERRORS as exc:
        log.debug("%s: no snapshot URI (%s)", reached_ip, _short(exc))  # optional in ONVIF Profile S
    return dataclasses.replace(
        info,
        # Some firmwares embed user:password@ in the URIs they return; they are dropped here, so no password
        # reaches the inventory file or a log line (the video layer adds the configured credentials itself).
        stream_uri=strip_userinfo(replace_host(_str(_get(reply, "Uri")), reached_ip)),
        stream_width=chosen.width,
        stream_height=chosen.height,
        stream_encoding=chosen.encoding,
        snapshot_uri=strip_userinfo(replace_host(snapshot, reached_ip)),
    )


def _profile(raw: Any) -> Profile:
    enc = _get(raw, "VideoEncoderConfiguration")
    width, height = _get(enc, "Resolution", "Width"), _get(enc, "Resolution", "Height")
    return Profile(
        token=str(_get(raw, "token") or ""),
        name=_str(_get(raw, "Name")),
        width=int(width) if width else None,
        height=int(height) if height else None,
        encoding=_str(_get(enc, "Encoding")),
    )


async def _pullpoint_works(cam: _Camera, reached_ip: str, timeout: float) -> bool:
    """Create a short-lived PullPoint subscription and remove it at once. False when events are unavailable."""
    if NS_EVENTS not in cam.xaddrs:
        return False
    try:
        events = await cam.create_events_service()
        reply = await _call(events.CreatePullPointSubscription({"InitialTerminationTime": PULLPOINT_PROBE_LIFETIME}),
                            timeout)
    except EVENTS_ERRORS as exc:
        log.info("%s: PullPoint not available (%s)", reached_ip, _short(exc))
        return False
    address = _str(_get(reply, "SubscriptionReference", "Address", "_value_1")) or _str(
        _get(reply, "SubscriptionReference", "Address"))
    if not address:
        return False
    cam.xaddrs[NS_PULLPOINT_SUB] = replace_host(address, reached_ip) or address
    try:
        sub = await cam.create_subscription_service("PullPointSubscription")
        await _call(sub.Unsubscribe(), timeout)
    except EVENTS_ERRORS as exc:
        log.warning("%s: could not remove the test PullPoint subscription (%s); it expires in 60 s",
                    reached_ip, _short(exc))
    return True


def _short(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(getattr(exc, "message", None) or exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def make_interrogator(
    settings: DiscoverySettings, budget: AuthBudget | None = None
) -> Callable[[Discovered], Awaitable[Interrogation]]:
    """A function interrogating one device, at most `settings.max_concurrent` at a time across all its calls."""
    budget = budget or AuthBudget(settings.auth_attempts, settings.auth_window_s)
    sem = asyncio.Semaphore(settings.max_concurrent)

    async def one(dev: Discovered) -> Interrogation:
        async with sem:
            return await interrogate(dev, settings, budget, settings.override_for(dev.ip, dev.endpoint_uuid, dev.name))

    return one


async def interrogate_all(
    devices: Iterable[Discovered],
    settings: DiscoverySettings,
    budget: AuthBudget | None = None,
) -> list[Interrogation]:
    """Interrogate many cameras on the current loop, at most `settings.max_concurrent` at a time."""
    await warm_up()
    one = make_interrogator(settings, budget)
    return list(await asyncio.gather(*(one(d) for d in devices)))
