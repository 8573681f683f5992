"""Interrogation failure reasons through the real onvif-zeep-async stack, against small loopback peers."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

from aiohttp import web

from agent.discovery.onvif import interrogate
from agent.discovery.policy import AuthBudget
from agent.discovery.results import Discovered, FailureReason, Via
from agent.discovery.settings import Credential, DiscoverySettings

ENV = ('<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
       'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema" '
       'xmlns:ter="http://www.onvif.org/ver10/error"><s:Body>{}</s:Body></s:Envelope>')
FAULT = ('<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>ter:{code}</s:Value></s:Subcode></s:Code>'
         '<s:Reason><s:Text xml:lang="en">{text}</s:Text></s:Reason></s:Fault>')


def _time_reply() -> str:
    now = dt.datetime.now(dt.UTC)
    return ("<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType>"
            "<tt:DaylightSavings>false</tt:DaylightSavings><tt:UTCDateTime>"
            f"<tt:Time><tt:Hour>{now.hour}</tt:Hour><tt:Minute>{now.minute}</tt:Minute>"
            f"<tt:Second>{now.second}</tt:Second></tt:Time><tt:Date><tt:Year>{now.year}</tt:Year>"
            f"<tt:Month>{now.month}</tt:Month><tt:Day>{now.day}</tt:Day></tt:Date></tt:UTCDateTime>"
            "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>")


async def _run_against(handler: Callable[[str], Awaitable[web.Response]], **settings: object):  # type: ignore[no-untyped-def]
    async def handle(request: web.Request) -> web.Response:
        return await handler(await request.text())

    app = web.Application()
    app.router.add_post("/onvif/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        dev = Discovered(ip="127.0.0.1", xaddr=f"http://127.0.0.1:{port}/onvif/device_service", via=Via.TARGET)
        opts = {"credentials": (Credential("admin", "pw"),), "call_timeout_s": 0.5, **settings}
        _PORT[0] = port
        return await interrogate(dev, DiscoverySettings(**opts), AuthBudget())  # type: ignore[arg-type]
    finally:
        await runner.cleanup()


_PORT = [0]


def _soap(body: str, status: int = 200) -> web.Response:
    return web.Response(status=status, text=ENV.format(body), content_type="application/soap+xml")


def test_onvif_failure_timeout() -> None:
    """A device that accepts the connection and never answers gives 'timeout' after the call timeout."""

    async def hang(_body: str) -> web.Response:
        await asyncio.sleep(30)
        return _soap("")

    result = asyncio.run(_run_against(hang))
    assert not result.ok and result.reason is FailureReason.TIMEOUT


def test_onvif_failure_unsupported() -> None:
    """A device that tells its clock but refuses GetDeviceInformation as unsupported gives 'unsupported'."""

    async def refuse(body: str) -> web.Response:
        if "GetSystemDateAndTime" in body:
            return _soap(_time_reply())
        return _soap(FAULT.format(code="ActionNotSupported", text="Optional Action Not Implemented"), 400)

    result = asyncio.run(_run_against(refuse))
    assert not result.ok and result.reason is FailureReason.UNSUPPORTED and result.auth_attempts == 1


def test_onvif_failure_clock_skew() -> None:
    """A WS-Security 'message expired' fault is reported as clock skew, not as a wrong password."""

    async def expired(body: str) -> web.Response:
        if "GetSystemDateAndTime" in body:
            return _soap(_time_reply())
        return _soap(FAULT.format(code="MessageExpired", text="The message has expired"), 400)

    result = asyncio.run(_run_against(expired))
    assert not result.ok and result.reason is FailureReason.CLOCK_SKEW and result.info.auth == "failed"


def test_onvif_failure_no_onvif_answer() -> None:
    """An HTTP server that is not ONVIF (404 HTML) gives 'no ONVIF answer' without any credential attempt."""

    async def html(_body: str) -> web.Response:
        return web.Response(status=404, text="<html>not here</html>", content_type="text/html")

    result = asyncio.run(_run_against(html))
    assert not result.ok and result.reason is FailureReason.NO_ONVIF_ANSWER and result.auth_attempts == 0


def test_onvif_failure_connection_refused() -> None:
    """Nothing listening gives 'no ONVIF answer'."""

    async def run():  # type: ignore[no-untyped-def]
        dev = Discovered(ip="127.0.0.1", xaddr="http://127.0.0.1:9/onvif/device_service", via=Via.TARGET)
        return await interrogate(dev, DiscoverySettings(call_timeout_s=1.0), AuthBudget())

    result = asyncio.run(run())
    assert result.reason is FailureReason.NO_ONVIF_ANSWER and result.auth_attempts == 0


CAPS = ('<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Device><tt:XAddr>http://0.0.0.0:{port}/onvif/device_service'
        '</tt:XAddr></tt:Device><tt:Media><tt:XAddr>http://127.0.0.2:{port}/onvif/media</tt:XAddr>'
        '<tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP>'
        '<tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media></tds:Capabilities>'
        '</tds:GetCapabilitiesResponse>')
PROFILES = ('<trt:GetProfilesResponse xmlns:trt="http://www.onvif.org/ver10/media/wsdl">' + "".join(
    f'<trt:Profiles token="{t}" fixed="true"><tt:Name>{t}</tt:Name><tt:VideoEncoderConfiguration token="v{t}">'
    f"<tt:Name>v</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding><tt:Resolution>"
    f"<tt:Width>{w}</tt:Width><tt:Height>{h}</tt:Height></tt:Resolution><tt:Quality>5</tt:Quality>"
    "</tt:VideoEncoderConfiguration></trt:Profiles>" for t, w, h in (("main", 1920, 1080), ("sub", 704, 576)))
    + "</trt:GetProfilesResponse>")
STREAM = ('<trt:GetStreamUriResponse xmlns:trt="http://www.onvif.org/ver10/media/wsdl"><trt:MediaUri>'
          "<tt:Uri>rtsp://192.168.1.10:554/ch0_1.h264</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
          "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri>"
          "</trt:GetStreamUriResponse>")
DEVINFO = ("<tds:GetDeviceInformationResponse><tds:Manufacturer>XM</tds:Manufacturer><tds:Model>IPC</tds:Model>"
           "<tds:FirmwareVersion>V4</tds:FirmwareVersion><tds:SerialNumber>abc</tds:SerialNumber>"
           "<tds:HardwareId>00001</tds:HardwareId></tds:GetDeviceInformationResponse>")


def test_onvif_capabilities_fallback_and_host_rewrite() -> None:
    """Without GetServices, GetCapabilities gives the media service; every returned host is rewritten to ours."""

    async def old_firmware(body: str) -> web.Response:
        for op, reply in (("GetSystemDateAndTime", _time_reply()), ("GetDeviceInformation", DEVINFO),
                          ("GetCapabilities", CAPS.format(port=_PORT[0])), ("GetProfiles", PROFILES),
                          ("GetStreamUri", STREAM)):
            if f"{op}" in body and f"{op}Response" not in body:
                return _soap(reply)
        return _soap(FAULT.format(code="ActionNotSupported", text="Optional Action Not Implemented"), 400)

    result = asyncio.run(_run_against(old_firmware))
    assert result.ok, result.detail
    assert result.info.stream_uri == "rtsp://127.0.0.1:554/ch0_1.h264"
    assert (result.info.stream_width, result.info.stream_height) == (704, 576)
    assert result.info.snapshot_uri is None and result.info.events_supported is False
    assert (result.info.manufacturer, result.info.serial) == ("XM", "abc")
