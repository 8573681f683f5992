"""The smallest protocol steps `doctor` needs, on the standard library only: a TCP connect, an RTSP request with
Basic/Digest authentication, and ONVIF SOAP calls with a WS-Security UsernameToken.

Deliberately not the agent's own ONVIF/RTSP stack: the doctor must still work — and say which step fails — when
that stack is what is broken, and every step must be one request the technician can reason about.
Each probe returns a result object, or raises `ProbeError` whose `kind` names what happened
(refused / timeout / unreachable / auth / fault / http / protocol).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import re
import socket
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

SOAP_TIMEOUT_S = 5.0  # cheap cameras answer ONVIF in < 1 s; 5 s tolerates a busy one on household wifi
RTSP_TIMEOUT_S = 5.0
MAX_RESPONSE_BYTES = 1 << 20  # a SOAP answer or SDP larger than 1 MiB is not from a camera

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tt": "http://www.onvif.org/ver10/schema",
}
_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
_B64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-soap-message-security-1.0#Base64Binary"


class ProbeError(Exception):
    """One step failed. `kind`: refused | timeout | unreachable | auth | fault | http | protocol."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# -- TCP ----------------------------------------------------------------------------------------------------------
def tcp_connect(host: str, port: int, timeout: float = 3.0) -> float:
    """Open and close a TCP connection; returns the connect time in seconds."""
    start = _now()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except ConnectionRefusedError:
        raise ProbeError("refused", f"{host}:{port} refused the connection") from None
    except TimeoutError:
        raise ProbeError("timeout", f"no answer from {host}:{port} within {timeout:g} s") from None
    except OSError as exc:
        raise ProbeError("unreachable", f"{host}:{port}: {exc.strerror or exc}") from None
    return _now() - start


def _now() -> float:
    import time

    return time.monotonic()


# -- RTSP ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RtspAnswer:
    status: int
    reason: str
    headers: dict[str, str]
    body: str = ""

    @property
    def has_video(self) -> bool:
        return any(line.startswith("m=video") for line in self.body.splitlines())


def url_port(url: str, default: int) -> int:
    """The URL's port, or `default`; a malformed port (some firmwares advertise -1 or text) is a ProbeError."""
    try:
        return urlsplit(url).port or default
    except ValueError:
        raise ProbeError("protocol", f"the address {strip_userinfo(url)[0]!r} has an invalid port") from None


def strip_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """rtsp://u:p@h/x → ('rtsp://h/x', 'u', 'p'); userinfo never goes on the wire in the request line."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None, None
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    port = parts.netloc.rsplit("@", 1)[-1].rpartition(":")[2] if ":" in parts.netloc.rsplit("@", 1)[-1] else ""
    if port:
        netloc += f":{port}"
    from urllib.parse import unquote

    return urlunsplit(parts._replace(netloc=netloc)), unquote(parts.username), unquote(parts.password or "")


def _read_rtsp(sock: socket.socket) -> RtspAnswer:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ProbeError("protocol", "the server closed the connection without an RTSP answer")
        data += chunk
        if len(data) > MAX_RESPONSE_BYTES:
            raise ProbeError("protocol", "the RTSP answer is too large")
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"RTSP/1\.\d (\d{3}) ?(.*)", lines[0])
    if not m:
        raise ProbeError("protocol", f"not an RTSP server (answered {lines[0][:40]!r})")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.setdefault(k.strip().lower(), v.strip())
    length = int(headers.get("content-length", "0") or 0)
    if length > MAX_RESPONSE_BYTES:
        raise ProbeError("protocol", "the RTSP body is too large")
    while len(rest) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        rest += chunk
    return RtspAnswer(int(m.group(1)), m.group(2), headers, rest[:length].decode("utf-8", "replace"))


def _digest_header(method: str, uri: str, user: str, password: str, challenge: str) -> str:
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
    realm, nonce = fields.get("realm", ""), fields.get("nonce", "")
    ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()  # RTSP Digest is MD5 by definition
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    out = f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}"'
    if "auth" in [q.strip() for q in fields.get("qop", "").split(",")]:  # RFC 2617 qop=auth (some firmwares)
        cnonce = os.urandom(8).hex()
        resp = hashlib.md5(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}".encode()).hexdigest()
        out += f', qop=auth, nc=00000001, cnonce="{cnonce}"'
    else:  # RFC 2069, what GStreamer and most cameras send
        resp = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()
    out += f', response="{resp}"'
    if "opaque" in fields:
        out += f', opaque="{fields["opaque"]}"'
    return out


def rtsp_request(
    url: str, method: str = "DESCRIBE", *, user: str | None = None, password: str | None = None,
    timeout: float = RTSP_TIMEOUT_S,
) -> RtspAnswer:
    """Send one RTSP request (answering one 401 challenge with the credentials); returns the final answer."""
    clean, url_user, url_pw = strip_userinfo(url)
    user = user if user is not None else url_user
    password = password if password is not None else url_pw
    host, port = urlsplit(clean).hostname or "", url_port(clean, 554)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        raise ProbeError("refused", f"{host}:{port} refused the RTSP connection") from None
    except TimeoutError:
        raise ProbeError("timeout", f"no answer from {host}:{port} within {timeout:g} s") from None
    except OSError as exc:
        raise ProbeError("unreachable", f"{host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.settimeout(timeout)
        cseq = 1
        auth: str | None = None
        for _ in range(2):
            lines = [f"{method} {clean} RTSP/1.0", f"CSeq: {cseq}", "User-Agent: matthan-doctor"]
            if method == "DESCRIBE":
                lines.append("Accept: application/sdp")
            if auth:
                lines.append(f"Authorization: {auth}")
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            answer = _read_rtsp(sock)
            challenge = answer.headers.get("www-authenticate", "")
            if answer.status != 401 or auth is not None or not user or not challenge:
                return answer
            if challenge.lower().startswith("digest"):
                auth = _digest_header(method, clean, user, password or "", challenge)
            else:
                auth = "Basic " + base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            cseq += 1
        return answer
    except TimeoutError:
        raise ProbeError("timeout", f"{host}:{port} accepted the connection but sent no RTSP answer") from None
    except OSError as exc:
        raise ProbeError("unreachable", f"{host}:{port}: {exc.strerror or exc}") from None
    finally:
        sock.close()


# -- ONVIF SOAP ---------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class OnvifSession:
    """Where the device service is and how to sign requests. `offset_s` = camera clock - our clock."""

    xaddr: str
    user: str | None = None
    password: str | None = None
    offset_s: float = 0.0
    timeout: float = SOAP_TIMEOUT_S
    media_xaddr: str | None = None
    learned: dict[str, str] = field(default_factory=dict)


def device_xaddr(host: str, port: int = 80) -> str:
    return f"http://{host}:{port}/onvif/device_service"


def _security_header(user: str, password: str, offset_s: float) -> str:
    nonce = os.urandom(16)
    created = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset_s)).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()
    return (
        f'<s:Header><Security s:mustUnderstand="1" xmlns="{_WSSE}"><UsernameToken>'
        f"<Username>{_xml_escape(user)}</Username><Password Type=\"{_DIGEST}\">{digest}</Password>"
        f'<Nonce EncodingType="{_B64}">{base64.b64encode(nonce).decode()}</Nonce>'
        f'<Created xmlns="{_WSU}">{created}</Created></UsernameToken></Security></s:Header>'
    )


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def soap_call(session: OnvifSession, body: str, *, url: str | None = None, signed: bool = True) -> ET.Element:
    """POST one SOAP 1.2 request; returns the Body element. Faults and HTTP errors raise ProbeError."""
    header = ""
    if signed and session.user:
        header = _security_header(session.user, session.password or "", session.offset_s)
    envelope = (
        f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{NS["s"]}">{header}'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    )
    target = url or session.xaddr
    req = urllib.request.Request(
        target, data=envelope.encode(), method="POST",
        headers={"Content-Type": "application/soap+xml; charset=utf-8"},
    )
    handlers: list[urllib.request.BaseHandler] = []
    if signed and session.user:
        # Some cameras (several Hikvision firmwares) want HTTP Digest instead of, or as well as, WS-Security.
        mgr = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        mgr.add_password(None, target, session.user, session.password or "")
        handlers.append(urllib.request.HTTPDigestAuthHandler(mgr))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(req, timeout=session.timeout) as resp:
            text = resp.read(MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as exc:
        payload = exc.read(MAX_RESPONSE_BYTES) if exc.fp else b""
        if exc.code == 401:
            raise ProbeError("auth", "HTTP 401: the camera refused the credentials") from None
        fault = _fault_text(payload)
        if fault is not None:
            kind = "auth" if "notauthorized" in fault.lower().replace(" ", "") else "fault"
            raise ProbeError(kind, f"SOAP fault: {fault}") from None
        raise ProbeError("http", f"HTTP {exc.code} from {_host_of(target)}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ConnectionRefusedError):
            raise ProbeError("refused", f"{_host_of(target)} refused the ONVIF connection") from None
        if isinstance(reason, TimeoutError | socket.timeout):
            raise ProbeError("timeout", f"no ONVIF answer from {_host_of(target)} in {session.timeout:g} s") from None
        raise ProbeError("unreachable", f"{_host_of(target)}: {reason}") from None
    except TimeoutError:
        raise ProbeError("timeout", f"no ONVIF answer from {_host_of(target)} in {session.timeout:g} s") from None
    except OSError as exc:
        raise ProbeError("unreachable", f"{_host_of(target)}: {exc}") from None
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        raise ProbeError("protocol", f"{_host_of(target)} did not answer with XML (not an ONVIF service?)") from None
    body_el = root.find("s:Body", NS)
    if body_el is None:
        raise ProbeError("protocol", "the answer has no SOAP 1.2 Body")
    fault = body_el.find("s:Fault", NS)
    if fault is not None:
        text_f = " ".join(t.strip() for t in fault.itertext() if t.strip())
        kind = "auth" if "notauthorized" in text_f.lower().replace(" ", "") else "fault"
        raise ProbeError(kind, f"SOAP fault: {text_f[:200]}")
    return body_el


def _host_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 80}"


def _fault_text(payload: bytes) -> str | None:
    try:
        root = ET.fromstring(payload)
    except ET.ParseError:
        return None
    fault = root.find(".//s:Fault", NS)
    if fault is None:
        return None
    return " ".join(t.strip() for t in fault.itertext() if t.strip())[:200]


def get_system_date_and_time(session: OnvifSession) -> dt.datetime:
    """Unauthenticated (ONVIF Core 5.9.1 allows it so clients can compute the WS-Security clock offset)."""
    body = soap_call(session, f'<GetSystemDateAndTime xmlns="{NS["tds"]}"/>', signed=False)
    utc = body.find(".//tt:UTCDateTime", NS)
    if utc is None:
        raise ProbeError("protocol", "GetSystemDateAndTime answer has no UTCDateTime")
    try:
        def num(path: str) -> int:
            return int(utc.findtext(path, namespaces=NS) or "")

        return dt.datetime(
            num("tt:Date/tt:Year"), num("tt:Date/tt:Month"), num("tt:Date/tt:Day"),
            num("tt:Time/tt:Hour"), num("tt:Time/tt:Minute"), num("tt:Time/tt:Second"), tzinfo=dt.UTC,
        )
    except ValueError:
        raise ProbeError("protocol", "GetSystemDateAndTime answer has an invalid date") from None


def get_device_information(session: OnvifSession) -> dict[str, str]:
    body = soap_call(session, f'<GetDeviceInformation xmlns="{NS["tds"]}"/>')
    resp = body.find("tds:GetDeviceInformationResponse", NS)
    if resp is None:
        raise ProbeError("protocol", "no GetDeviceInformationResponse in the answer")
    return {el.tag.split("}")[-1]: (el.text or "").strip() for el in resp}


_NOWHERE_HOSTS = ("127.", "0.0.0.0", "localhost")


def fix_host(url: str, known_host: str | None) -> str:
    """Replace a loopback or 0.0.0.0 host in an address the camera advertised by the address we reached it at.
    Several cheap firmwares read their own address before DHCP finishes and advertise 127.0.0.1 forever."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not known_host or host == known_host or not host.startswith(_NOWHERE_HOSTS):
        return url
    netloc = parts.netloc.rsplit("@", 1)
    hostport = netloc[-1].replace(host, known_host, 1)
    return urlunsplit(parts._replace(netloc="@".join([*netloc[:-1], hostport])))


def get_media_xaddr(session: OnvifSession) -> str:
    body = soap_call(session, f'<GetCapabilities xmlns="{NS["tds"]}"><Category>Media</Category></GetCapabilities>')
    xaddr = (body.findtext(".//tt:Media/tt:XAddr", namespaces=NS) or "").strip()
    return fix_host(xaddr, urlsplit(session.xaddr).hostname) if xaddr else session.xaddr


def get_stream_uri(session: OnvifSession) -> str:
    """GetProfiles on the media service, then GetStreamUri (RTP-Unicast over RTSP) of the last profile, which on
    almost every camera is the substream the agent analyses."""
    media = session.media_xaddr or get_media_xaddr(session)
    session.media_xaddr = media
    body = soap_call(session, f'<GetProfiles xmlns="{NS["trt"]}"/>', url=media)
    tokens = [p.get("token") for p in body.iter(f"{{{NS['trt']}}}Profiles") if p.get("token")]
    if not tokens:
        raise ProbeError("protocol", "the camera lists no media profiles")
    token = tokens[-1]
    req = (
        f'<GetStreamUri xmlns="{NS["trt"]}"><StreamSetup><Stream xmlns="{NS["tt"]}">RTP-Unicast</Stream>'
        f'<Transport xmlns="{NS["tt"]}"><Protocol>RTSP</Protocol></Transport></StreamSetup>'
        f"<ProfileToken>{_xml_escape(str(token))}</ProfileToken></GetStreamUri>"
    )
    body = soap_call(session, req, url=media)
    uri = body.findtext(".//tt:Uri", namespaces=NS)
    if not uri:
        raise ProbeError("protocol", "GetStreamUri answer has no Uri")
    return fix_host(uri.strip(), urlsplit(session.xaddr).hostname)
