"""The WS-Discovery parser: lenient with real cameras' shapes, hard against hostile datagrams."""

from __future__ import annotations

import pytest

from agent.discovery.parse import (
    MAX_DATAGRAM_BYTES,
    MessageKind,
    ParseError,
    choose_xaddr,
    parse_datagram,
    replace_host,
    split_scopes,
    strip_userinfo,
)
from tests.discovery import samples


def test_parse_probe_match_fields() -> None:
    """A standard ProbeMatch yields endpoint uuid, local type names, decoded scopes, XAddrs and RelatesTo."""
    msg = parse_datagram(samples.PROBE_MATCH)
    assert msg.kind is MessageKind.PROBE_MATCHES
    assert msg.relates_to == samples.RELATES
    (ep,) = msg.endpoints
    assert ep.uuid == samples.UUID
    assert ep.types == ("NetworkVideoTransmitter", "Device")
    assert ep.scope_value("name") == "Cổng chợ"
    assert ep.scope_value("hardware") == "DS-2CD1023G0E-I"
    assert ep.scope_value("location") == "city/hanoi"
    assert ep.xaddrs[1] == "http://192.168.1.64/onvif/device_service"


def test_parse_probe_match_without_wrapper_soap11_2009() -> None:
    """A ProbeMatch directly in Body (no ProbeMatches), SOAP 1.1 and WS-Discovery 2009/01, is accepted."""
    msg = parse_datagram(samples.NO_WRAPPER)
    assert msg.kind is MessageKind.PROBE_MATCHES
    (ep,) = msg.endpoints
    assert ep.uuid == "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
    assert ep.scope_value("name") == "Cong cho"  # the unescaped space is glued back


def test_parse_hello_and_bye() -> None:
    """Hello carries the endpoint and XAddrs; Bye only the endpoint."""
    hello = parse_datagram(samples.HELLO)
    bye = parse_datagram(samples.BYE)
    assert hello.kind is MessageKind.HELLO and hello.endpoints[0].uuid == samples.UUID
    assert hello.endpoints[0].xaddrs == ("http://198.18.0.11/onvif/device_service",)
    assert bye.kind is MessageKind.BYE and bye.endpoints[0].uuid == samples.UUID
    assert bye.endpoints[0].xaddrs == ()


@pytest.mark.parametrize(
    "payload",
    [samples.XXE, samples.LAUGHS, samples.UTF16_DOCTYPE, b"\x00" * 65536, b"<" * 65536, b"", b"not xml",
     b"<Envelope>" * 5000, b"<a>" * 40 + b"</a>" * 40],
    ids=["xxe", "billion-laughs", "utf16-doctype", "64k-nul", "64k-lt", "empty", "text", "unclosed", "deep"],
)
def test_parse_hostile_datagram_refused(payload: bytes) -> None:
    """DTDs, entities, oversized, deep and malformed datagrams raise ParseError and nothing else."""
    with pytest.raises(ParseError):
        parse_datagram(payload)


def test_parse_xxe_refused_before_expat_sees_it() -> None:
    """A DOCTYPE is refused by the byte check, so no entity can ever be resolved."""
    with pytest.raises(ParseError, match="DTD or entity"):
        parse_datagram(samples.XXE)


def test_parse_utf16_doctype_refused_by_handler() -> None:
    """A DTD hidden from the byte check by UTF-16 is still refused by the expat handler."""
    assert b"<!DOCTYPE" not in samples.UTF16_DOCTYPE
    with pytest.raises(ParseError, match="DTD refused"):
        parse_datagram(samples.UTF16_DOCTYPE)


def test_parse_size_cap() -> None:
    """A datagram above the cap is refused without parsing."""
    big = samples.PROBE_MATCH + b" " * MAX_DATAGRAM_BYTES
    with pytest.raises(ParseError, match="too large"):
        parse_datagram(big)


def test_parse_wrong_namespaces_matched_on_local_names() -> None:
    """Unknown namespace URIs do not matter: names are matched on their local part, as cheap cameras need."""
    msg = parse_datagram(samples.WRONG_NAMESPACES)
    assert msg.kind is MessageKind.PROBE_MATCHES and msg.endpoints[0].uuid == samples.UUID


def test_parse_undeclared_prefix_tolerated() -> None:
    """An undeclared prefix (seen on some firmwares) does not make the datagram unreadable."""
    data = b"<s:Envelope><s:Body><d:ProbeMatch><a:EndpointReference><a:Address>urn:uuid:" + \
        samples.UUID.encode() + b"</a:Address></a:EndpointReference></d:ProbeMatch></s:Body></s:Envelope>"
    assert parse_datagram(data).endpoints[0].uuid == samples.UUID


def test_parse_not_an_envelope_refused() -> None:
    """Well-formed XML that is not a SOAP envelope is refused."""
    with pytest.raises(ParseError, match="envelope"):
        parse_datagram(b"<html><body>router login</body></html>")


def test_scopes_percent_decoded_and_joined() -> None:
    """Percent-encoded scopes are decoded; a token without a scheme belongs to the scope before it."""
    assert split_scopes("onvif://www.onvif.org/name/A%20B onvif://x/y/C D  E") == (
        "onvif://www.onvif.org/name/A B", "onvif://x/y/C D E")


def test_xaddr_prefers_source_host() -> None:
    """An XAddr naming the UDP source wins over a loopback one."""
    got = choose_xaddr(("http://127.0.0.1/onvif/device_service", "http://10.0.0.5:8080/onvif/d"), "10.0.0.5")
    assert got == "http://10.0.0.5:8080/onvif/d"


def test_xaddr_substitutes_source_address() -> None:
    """With no XAddr naming the source, the source address replaces the host and the port stays."""
    assert choose_xaddr(("http://0.0.0.0:8899/onvif/device_service",), "10.0.0.7") == \
        "http://10.0.0.7:8899/onvif/device_service"
    assert choose_xaddr(("ftp://x", "http://[bad"), "10.0.0.7") == "http://10.0.0.7/onvif/device_service"


def test_replace_host_keeps_userinfo_port_path() -> None:
    """A returned URI naming another host is pointed at the address we reached; the rest is kept."""
    assert replace_host("rtsp://u:p@127.0.0.1:554/Streaming/102?x=1", "10.0.0.9") == \
        "rtsp://u:p@10.0.0.9:554/Streaming/102?x=1"
    assert replace_host("rtsp://10.0.0.9/s", "10.0.0.9") == "rtsp://10.0.0.9/s"
    assert replace_host(None, "10.0.0.9") is None


def test_strip_userinfo_drops_credentials_only() -> None:
    """Credentials embedded by a camera in a URI are removed; host, port, path and query stay."""
    assert strip_userinfo("rtsp://admin:pw@10.0.0.9:554/s?ch=1") == "rtsp://10.0.0.9:554/s?ch=1"
    assert strip_userinfo("rtsp://10.0.0.9/s") == "rtsp://10.0.0.9/s"
    assert strip_userinfo(None) is None
