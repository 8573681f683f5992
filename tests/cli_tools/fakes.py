"""Small real servers on loopback for the doctor's protocol steps: an ONVIF device (SOAP over HTTP, WS-Security
digest checked for real), an RTSP server with Digest authentication, and a TCP port that accepts and never answers.

They stand in for the simulator's cameras until those land; each speaks just enough of the protocol to say yes or
no the way a real camera does (SOAP faults with HTTP 400/500, RTSP 401 with a Digest challenge, 404 for a wrong
path).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import socket
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SOAP_NS = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"


def _envelope(body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{SOAP_NS}" '
        'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" '
        f'xmlns:tt="http://www.onvif.org/ver10/schema"><s:Body>{body}</s:Body></s:Envelope>'
    ).encode()


def _fault(code: str, text: str) -> bytes:
    return _envelope(
        f"<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>{code}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en">{text}</s:Text></s:Reason></s:Fault>'
    )


@dataclass
class OnvifDevice:
    """What the fake camera knows. `mode`: "ok", "fault" (every call a SOAP fault), "http404"."""

    user: str = "admin"
    password: str = "cam-secret-Xy7"
    clock_offset_s: float = 0.0
    mode: str = "ok"
    rtsp_url: str = "rtsp://127.0.0.1:554/stream2"
    port: int = 0
    requests: list[str] = field(default_factory=list)

    def authorised(self, root: ET.Element) -> bool:
        token = root.find(f".//{{{WSSE}}}UsernameToken")
        if token is None:
            return False
        user = token.findtext(f"{{{WSSE}}}Username")
        digest = token.findtext(f"{{{WSSE}}}Password") or ""
        nonce = base64.b64decode(token.findtext(f"{{{WSSE}}}Nonce") or "")
        created = token.findtext(f"{{{WSU}}}Created") or ""
        expect = base64.b64encode(hashlib.sha1(nonce + created.encode() + self.password.encode()).digest()).decode()
        return user == self.user and digest == expect

    def answer(self, body: bytes) -> tuple[int, bytes]:
        if self.mode == "http404":
            return 404, b"<html>not found</html>"
        root = ET.fromstring(body)
        op_el = root.find(f"{{{SOAP_NS}}}Body")
        op = op_el[0].tag.split("}")[-1] if op_el is not None and len(op_el) else ""
        self.requests.append(op)
        if self.mode == "fault":
            return 500, _fault("ter:ActionNotSupported", "Optional Action Not Implemented")
        if op == "GetSystemDateAndTime":
            t = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.clock_offset_s)
            return 200, _envelope(
                "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:UTCDateTime>"
                f"<tt:Time><tt:Hour>{t.hour}</tt:Hour><tt:Minute>{t.minute}</tt:Minute><tt:Second>{t.second}"
                f"</tt:Second></tt:Time><tt:Date><tt:Year>{t.year}</tt:Year><tt:Month>{t.month}</tt:Month>"
                f"<tt:Day>{t.day}</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime>"
                "</tds:GetSystemDateAndTimeResponse>"
            )
        if not self.authorised(root):
            return 400, _fault("ter:NotAuthorized", "Sender not Authorized")
        if op == "GetDeviceInformation":
            return 200, _envelope(
                "<tds:GetDeviceInformationResponse><tds:Manufacturer>FakeCam</tds:Manufacturer>"
                "<tds:Model>FC-1</tds:Model><tds:FirmwareVersion>1.0</tds:FirmwareVersion>"
                "<tds:SerialNumber>42</tds:SerialNumber><tds:HardwareId>1</tds:HardwareId>"
                "</tds:GetDeviceInformationResponse>"
            )
        if op == "GetCapabilities":
            return 200, _envelope(
                "<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Media>"
                f"<tt:XAddr>http://127.0.0.1:{self.port}/onvif/media_service</tt:XAddr>"
                "</tt:Media></tds:Capabilities></tds:GetCapabilitiesResponse>"
            )
        if op == "GetProfiles":
            return 200, _envelope(
                '<trt:GetProfilesResponse><trt:Profiles token="main"><tt:Name>main</tt:Name></trt:Profiles>'
                '<trt:Profiles token="sub"><tt:Name>sub</tt:Name></trt:Profiles></trt:GetProfilesResponse>'
            )
        if op == "GetStreamUri":
            return 200, _envelope(
                f"<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>{self.rtsp_url}</tt:Uri></trt:MediaUri>"
                "</trt:GetStreamUriResponse>"
            )
        return 500, _fault("ter:ActionNotSupported", op)


@contextmanager
def onvif_server(device: OnvifDevice) -> Iterator[OnvifDevice]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            status, payload = device.answer(self.rfile.read(length))
            self.send_response(status)
            self.send_header("Content-Type", "application/soap+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    device.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield device
    finally:
        server.shutdown()
        server.server_close()


SDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=fake\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"


@dataclass
class RtspServer:
    user: str = "admin"
    password: str = "cam-secret-Xy7"
    path: str = "/stream2"
    sdp: str = SDP
    port: int = 0
    realm: str = "FakeCam"
    nonce: str = "0a4f113b"

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.path}"

    def _answer(self, request: str) -> str:
        lines = request.split("\r\n")
        method, uri, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        cseq = headers.get("cseq", "0")
        auth = headers.get("authorization", "")
        fields = dict(re.findall(r'(\w+)="([^"]*)"', auth))
        ha1 = hashlib.md5(f"{self.user}:{self.realm}:{self.password}".encode()).hexdigest()
        ha2 = hashlib.md5(f"{method}:{fields.get('uri', '')}".encode()).hexdigest()
        good = auth.startswith("Digest") and fields.get("response") == hashlib.md5(
            f"{ha1}:{self.nonce}:{ha2}".encode()).hexdigest()
        if not good:
            return (f"RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\n"
                    f'WWW-Authenticate: Digest realm="{self.realm}", nonce="{self.nonce}"\r\n\r\n')
        if not uri.endswith(self.path):
            return f"RTSP/1.0 404 Not Found\r\nCSeq: {cseq}\r\n\r\n"
        body = self.sdp.encode()
        return (f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Type: application/sdp\r\n"
                f"Content-Length: {len(body)}\r\n\r\n{self.sdp}")


@contextmanager
def rtsp_server(server: RtspServer) -> Iterator[RtspServer]:
    lsock = socket.create_server(("127.0.0.1", 0))
    server.port = lsock.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        lsock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                buf = b""
                try:
                    while True:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        buf += chunk
                        while b"\r\n\r\n" in buf:
                            req, buf = buf.split(b"\r\n\r\n", 1)
                            conn.sendall(server._answer(req.decode()).encode())
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        lsock.close()
        thread.join(timeout=5)


@contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog does it) and never says a word."""
    lsock = socket.create_server(("127.0.0.1", 0), backlog=16)
    try:
        yield lsock.getsockname()[1]
    finally:
        lsock.close()


def closed_port() -> int:
    """A loopback port with nobody listening (bound and released: the kernel answers RST)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
