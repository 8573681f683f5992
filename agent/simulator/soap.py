"""SOAP 1.2 plumbing for the simulated ONVIF services: parse a request, check WS-UsernameToken, build replies.

PasswordDigest = base64(sha1(nonce + created + password)), as in the WS-Security UsernameToken profile 1.0 that
ONVIF requires. Created is checked against the camera's own clock (which may be skewed or reset to 1970), so a
client that does not adjust its clock to the camera's fails exactly as it does with a real camera.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import escape

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
    "wsa": "http://www.w3.org/2005/08/addressing",
}
PASSWORD_DIGEST = ("http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
                   "#PasswordDigest")
CREATED_TOLERANCE_S = 60.0  # cameras accept a small drift; a 120 s skew must fail without clock adjustment
MAX_BODY = 256 * 1024

ENVELOPE_NS = (
    'xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:tt="http://www.onvif.org/ver10/schema" '
    'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" '
    'xmlns:trt="http://www.onvif.org/ver10/media/wsdl" '
    'xmlns:tev="http://www.onvif.org/ver10/events/wsdl" '
    'xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" '
    'xmlns:wstop="http://docs.oasis-open.org/wsn/t-1" '
    'xmlns:tns1="http://www.onvif.org/ver10/topics" '
    'xmlns:wsa="http://www.w3.org/2005/08/addressing" '
    'xmlns:ter="http://www.onvif.org/ver10/error" '
    'xmlns:wsrf-rw="http://docs.oasis-open.org/wsrf/rw-2"'
)


class SoapFault(Exception):
    """A SOAP fault to send back: code (env:Sender/Receiver), ONVIF subcodes, reason, HTTP status."""

    def __init__(self, reason: str, *, code: str = "s:Sender", subcodes: tuple[str, ...] = (),
                 status: int = 400) -> None:
        super().__init__(reason)
        self.reason, self.code, self.subcodes, self.status = reason, code, subcodes, status


def not_authorized() -> SoapFault:
    return SoapFault("Sender not Authorized", subcodes=("ter:NotAuthorized",), status=400)


def action_not_supported(what: str) -> SoapFault:
    return SoapFault(f"{what} is not supported", code="s:Receiver", subcodes=("ter:ActionNotSupported",),
                     status=400)


@dataclass(frozen=True)
class Request:
    operation: str  # local name of the Body's first child
    body: ET.Element  # that child
    header: ET.Element | None
    message_id: str | None


def parse_request(data: bytes) -> Request:
    if len(data) > MAX_BODY:
        raise SoapFault("request too large")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise SoapFault("DTDs are not accepted")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise SoapFault(f"malformed XML: {exc}") from exc
    body = root.find("s:Body", NS)
    if body is None or len(body) == 0:
        raise SoapFault("no SOAP 1.2 Body")
    op = body[0]
    header = root.find("s:Header", NS)
    mid = header.find("wsa:MessageID", NS) if header is not None else None
    return Request(op.tag.rsplit("}", 1)[-1], op, header, mid.text if mid is not None else None)


def _parse_created(text: str) -> dt.datetime:
    text = text.strip().replace("Z", "+00:00")
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when


def check_username_token(req: Request, username: str, password: str, camera_now: dt.datetime) -> None:
    """Raise NotAuthorized unless the request carries a valid, fresh PasswordDigest token for these credentials."""
    if req.header is None:
        raise not_authorized()
    token = req.header.find("wsse:Security/wsse:UsernameToken", NS)
    if token is None:
        raise not_authorized()
    user = token.findtext("wsse:Username", default="", namespaces=NS)
    pw_el = token.find("wsse:Password", NS)
    nonce_text = token.findtext("wsse:Nonce", default="", namespaces=NS)
    created_text = token.findtext("wsu:Created", default="", namespaces=NS)
    if pw_el is None or user != username:
        raise not_authorized()
    pw_type = pw_el.get("Type", "")
    given = (pw_el.text or "").strip()
    if pw_type.endswith("#PasswordDigest"):
        try:
            nonce = base64.b64decode(nonce_text, validate=True)
            created = _parse_created(created_text)
        except (binascii.Error, ValueError) as exc:
            raise not_authorized() from exc
        expected = base64.b64encode(hashlib.sha1(nonce + created_text.encode() + password.encode()).digest()).decode()
        if not hmac.compare_digest(expected, given):
            raise not_authorized()
        if abs((created - camera_now).total_seconds()) > CREATED_TOLERANCE_S:
            raise not_authorized()  # like real cameras: a stale or future Created looks like a replay
    elif not hmac.compare_digest(given, password):  # PasswordText, accepted as many cameras do
        raise not_authorized()


def envelope(body_xml: str, *, action: str | None = None, relates_to: str | None = None) -> bytes:
    header = ""
    if action or relates_to:
        parts = []
        if action:
            parts.append(f"<wsa:Action>{escape(action)}</wsa:Action>")
        if relates_to:
            parts.append(f"<wsa:RelatesTo>{escape(relates_to)}</wsa:RelatesTo>")
        header = f"<s:Header>{''.join(parts)}</s:Header>"
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<s:Envelope {ENVELOPE_NS}>{header}'
            f"<s:Body>{body_xml}</s:Body></s:Envelope>").encode()


def fault_xml(fault: SoapFault) -> bytes:
    sub = ""
    for code in reversed(fault.subcodes):
        sub = f"<s:Subcode><s:Value>{code}</s:Value>{sub}</s:Subcode>"
    return envelope(
        f"<s:Fault><s:Code><s:Value>{fault.code}</s:Value>{sub}</s:Code>"
        f'<s:Reason><s:Text xml:lang="en">{escape(fault.reason)}</s:Text></s:Reason></s:Fault>'
    )


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration(text: str | None, default_s: float) -> float:
    """xs:duration like PT60S / PT1M / PT1H30M, or an absolute time handled by the caller (returns default)."""
    if not text:
        return default_s
    text = text.strip()
    if not text.startswith("P"):
        return default_s
    total, num = 0.0, ""
    in_time = False
    for ch in text[1:]:
        if ch == "T":
            in_time = True
        elif ch.isdigit() or ch == ".":
            num += ch
        else:
            value = float(num or 0)
            num = ""
            total += value * {"D": 86400, "H": 3600, "M": 60 if in_time else 2592000, "S": 1}.get(ch, 0)
    return total
