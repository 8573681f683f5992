"""Safe, lenient parsing of WS-Discovery datagrams (ProbeMatches, Hello, Bye) from anyone on the LAN.

The XML arrives by UDP from any device on a village's shared wifi, so it is hostile until proven otherwise:
- DTDs and entities are refused before and during parsing (XXE, billion laughs): a datagram that contains
  `<!DOCTYPE` or `<!ENTITY` is rejected unread, and the expat handlers for doctype and entity declarations raise.
- Sizes are capped (datagram bytes, element count, depth, text length), so a 64 KiB blob costs bounded work.
- Names are matched on their local part only: cheap cameras use every prefix and several namespace versions
  (WS-Discovery 2005/04 and 2009/01, SOAP 1.1 and 1.2), some with undeclared prefixes, so namespace processing
  is off and `d:ProbeMatch`, `wsdd:ProbeMatch` and `ProbeMatch` are the same thing.
- `parse_datagram` raises only `ParseError`; the receive loop relies on that (the fuzz tests check it).

Everything here is pure: bytes in, frozen values out.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit
from xml.parsers import expat

MAX_DATAGRAM_BYTES = 32 * 1024  # real ProbeMatches are 1-4 KiB; NVRs listing many scopes stay well under 32 KiB
MAX_ELEMENTS = 1000  # a ProbeMatch has ~20 elements; this bounds work on junk that is valid XML
MAX_DEPTH = 32  # SOAP envelope > Body > ProbeMatches > ProbeMatch > EndpointReference > Address is depth 6
MAX_TEXT_CHARS = 8192  # per element: the longest real field (Scopes) is a few hundred characters
MAX_MATCHES = 64  # endpoints per datagram; more is an attack or a broken proxy

_FORBIDDEN = (b"<!DOCTYPE", b"<!ENTITY")
_ONVIF_SCOPE = "onvif://www.onvif.org/"
_URN_UUID = re.compile(r"^(?:urn:uuid:|uuid:)?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$", re.I)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


class ParseError(ValueError):
    """The datagram is not a usable WS-Discovery message; `reason` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MessageKind(enum.StrEnum):
    PROBE_MATCHES = "probe_matches"
    HELLO = "hello"
    BYE = "bye"
    PROBE = "probe"  # someone else probing; ignored by the agent
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One device described by a ProbeMatch, Hello or Bye. `scopes` are percent-decoded."""

    address: str  # EndpointReference/Address as sent, e.g. urn:uuid:...
    uuid: str | None  # lower-case uuid when the address is a (urn:)uuid, else None
    types: tuple[str, ...]  # local names, e.g. ("NetworkVideoTransmitter", "Device")
    scopes: tuple[str, ...]
    xaddrs: tuple[str, ...]
    metadata_version: str | None = None

    @property
    def key(self) -> str:
        """What deduplication uses: the uuid if there is one, else the raw address."""
        return self.uuid or self.address

    def scope_value(self, kind: str) -> str | None:
        """The value of the ONVIF scope `onvif://www.onvif.org/<kind>/<value>`, e.g. kind="name"."""
        prefix = f"{_ONVIF_SCOPE}{kind}/".lower()
        for scope in self.scopes:
            if scope.lower().startswith(prefix):
                value = scope[len(prefix) :].strip()
                return value or None
        return None


@dataclass(frozen=True, slots=True)
class WsdMessage:
    kind: MessageKind
    action: str | None
    message_id: str | None
    relates_to: str | None
    endpoints: tuple[Endpoint, ...]


class _Refused(Exception):
    """Raised inside expat handlers to abort parsing of forbidden constructs."""


class _Node:
    __slots__ = ("children", "name", "text")

    def __init__(self, name: str) -> None:
        self.name = name
        self.children: list[_Node] = []
        self.text: list[str] = []

    def child(self, name: str) -> _Node | None:
        for node in self.children:
            if node.name == name:
                return node
        return None

    def value(self) -> str:
        return "".join(self.text).strip()


def _local(name: str) -> str:
    return name.rpartition(":")[2]


def _build_tree(data: bytes) -> _Node:
    parser = expat.ParserCreate()  # no namespace processing: local names only, undeclared prefixes tolerated
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    root = _Node("#document")
    stack = [root]
    counts = {"elements": 0}

    def start(name: str, _attrs: dict[str, str]) -> None:
        counts["elements"] += 1
        if counts["elements"] > MAX_ELEMENTS:
            raise _Refused("too many elements")
        if len(stack) > MAX_DEPTH:
            raise _Refused("too deep")
        node = _Node(_local(name))
        stack[-1].children.append(node)
        stack.append(node)

    def end(_name: str) -> None:
        stack.pop()

    def chars(text: str) -> None:
        node = stack[-1]
        if sum(map(len, node.text)) + len(text) > MAX_TEXT_CHARS:
            raise _Refused("text too long")
        node.text.append(text)

    def refuse_doctype(*_args: object) -> None:
        raise _Refused("DTD refused")

    def refuse_entity(*_args: object) -> None:
        raise _Refused("entity declaration refused")

    def refuse_external(*_args: object) -> int:
        raise _Refused("external entity refused")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_entity
    parser.UnparsedEntityDeclHandler = refuse_entity
    parser.ExternalEntityRefHandler = refuse_external
    parser.Parse(data, True)
    return root


def parse_datagram(data: bytes) -> WsdMessage:
    """Parse one UDP datagram. Raises ParseError (and nothing else) when it is not a usable message."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ParseError("not bytes")
    data = bytes(data)
    if len(data) > MAX_DATAGRAM_BYTES:
        raise ParseError("datagram too large")
    upper = data.upper()
    if any(marker in upper for marker in _FORBIDDEN):
        raise ParseError("DTD or entity declaration refused")
    try:
        root = _build_tree(data)
    except _Refused as exc:
        raise ParseError(str(exc)) from None
    except (expat.ExpatError, ValueError, UnicodeError, LookupError, OverflowError) as exc:
        raise ParseError(f"not well-formed XML: {exc}") from None
    if len(root.children) != 1 or root.children[0].name != "Envelope":
        raise ParseError("not a SOAP envelope")
    return _interpret(root.children[0])


def _interpret(envelope: _Node) -> WsdMessage:
    header = envelope.child("Header")
    body = envelope.child("Body")
    if body is None:
        raise ParseError("SOAP envelope without Body")
    action = message_id = relates_to = None
    if header is not None:
        action = _text(header.child("Action"))
        message_id = _text(header.child("MessageID"))
        relates_to = _text(header.child("RelatesTo"))
    kind = _kind(action, body)
    endpoints: list[Endpoint] = []
    if kind is MessageKind.PROBE_MATCHES:
        # Some cameras (seen on cheap XMeye/Hi35xx firmwares) put ProbeMatch directly in Body, without the
        # ProbeMatches wrapper the standard requires; both shapes are accepted.
        holders = [n for n in body.children if n.name == "ProbeMatches"] or [body]
        for holder in holders:
            for node in holder.children:
                if node.name == "ProbeMatch":
                    endpoints.append(_endpoint(node))
    elif kind in (MessageKind.HELLO, MessageKind.BYE):
        node = body.child("Hello" if kind is MessageKind.HELLO else "Bye")
        if node is not None:
            endpoints.append(_endpoint(node))
    if len(endpoints) > MAX_MATCHES:
        raise ParseError("too many endpoints")
    return WsdMessage(kind, action, message_id, relates_to, tuple(e for e in endpoints if e.address))


def _kind(action: str | None, body: _Node) -> MessageKind:
    names = {n.name for n in body.children}
    last = (action or "").rstrip("/").rpartition("/")[2]
    if last == "ProbeMatches" or "ProbeMatches" in names or "ProbeMatch" in names:
        return MessageKind.PROBE_MATCHES
    if last == "Hello" or "Hello" in names:
        return MessageKind.HELLO
    if last == "Bye" or "Bye" in names:
        return MessageKind.BYE
    if last == "Probe" or "Probe" in names:
        return MessageKind.PROBE
    return MessageKind.OTHER


def _text(node: _Node | None) -> str | None:
    if node is None:
        return None
    return node.value() or None


def _endpoint(node: _Node) -> Endpoint:
    epr = node.child("EndpointReference")
    address = _text(epr.child("Address")) if epr is not None else None
    address = address or ""
    match = _URN_UUID.match(address)
    types = tuple(_local(t) for t in (_text(node.child("Types")) or "").split())
    return Endpoint(
        address=address,
        uuid=match.group(1).lower() if match else None,
        types=types,
        scopes=split_scopes(_text(node.child("Scopes")) or ""),
        xaddrs=tuple((_text(node.child("XAddrs")) or "").split()),
        metadata_version=_text(node.child("MetadataVersion")),
    )


def split_scopes(text: str) -> tuple[str, ...]:
    """Split a Scopes list on whitespace and percent-decode each scope.

    Quirk: some cameras (cheap Hikvision OEM and XMeye firmwares) put an unescaped space inside a scope, e.g.
    `onvif://www.onvif.org/name/Cong cho`. A token that does not start with a URI scheme cannot be a scope of
    its own, so it is glued back onto the previous scope with the space it lost.
    """
    scopes: list[str] = []
    for token in text.split():
        if scopes and not _SCHEME.match(token):
            scopes[-1] = f"{scopes[-1]} {token}"
        else:
            scopes.append(token)
    return tuple(unquote(s, errors="replace") for s in scopes)


def choose_xaddr(xaddrs: tuple[str, ...] | list[str], source_ip: str) -> str:
    """Pick the device-service URL to use, not trusting what the camera advertised.

    Prefer an XAddr whose host is the UDP source address. Else take the first http(s) XAddr and substitute the
    source address for its host, keeping port and path: cameras advertise 127.0.0.1, 0.0.0.0, a stale DHCP
    address or another interface's address. With no usable XAddr at all, assume the ONVIF default path.
    """
    candidates = []
    for raw in xaddrs:
        try:
            parts = urlsplit(raw)
            port = parts.port
        except ValueError:
            continue
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            continue
        if parts.hostname == source_ip:
            return raw
        candidates.append((parts, port))
    if not candidates:
        return f"http://{source_ip}/onvif/device_service"
    parts, port = candidates[0]
    return urlunsplit(parts._replace(netloc=f"{source_ip}:{port}" if port else source_ip))


def replace_host(uri: str | None, reached_ip: str) -> str | None:
    """Rewrite the host of a URI the camera returned when it is not the address we reached it at.

    Cameras return 127.0.0.1, 0.0.0.0, a hostname, or an old DHCP address in XAddrs, stream and snapshot URIs;
    port, path, query and any user info are kept. None and unparsable URIs are returned unchanged.
    """
    if not uri:
        return uri
    try:
        parts = urlsplit(uri)
        host, port = parts.hostname, parts.port
    except ValueError:
        return uri
    if not host or host == reached_ip:
        return uri
    userinfo, _, _hostport = parts.netloc.rpartition("@")
    netloc = f"{reached_ip}:{port}" if port else reached_ip
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


def strip_userinfo(uri: str | None) -> str | None:
    """rtsp://admin:secret@10.0.0.9:554/s -> rtsp://10.0.0.9:554/s; anything else unchanged."""
    if not uri or "@" not in uri:
        return uri
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


__all__ = [
    "MAX_DATAGRAM_BYTES",
    "Endpoint",
    "MessageKind",
    "ParseError",
    "WsdMessage",
    "choose_xaddr",
    "parse_datagram",
    "replace_host",
    "split_scopes",
    "strip_userinfo",
]
