"""ProbeMatch, Hello and Bye datagrams shaped like real cameras' (a corpus for the parser tests and the fuzzer)."""

from __future__ import annotations

RELATES = "urn:uuid:11111111-2222-4333-8444-555555555555"
UUID = "5f5a69c2-e0ae-504f-829b-00ccba2d3f01"

PROBE_MATCH = f"""<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope"
 xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"
 xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"
 xmlns:dn="http://www.onvif.org/ver10/network/wsdl" xmlns:tds="http://www.onvif.org/ver10/device/wsdl">
<SOAP-ENV:Header>
<wsa:MessageID>uuid:0a6dc791-2be6-4991-9af1-454778a1917a</wsa:MessageID>
<wsa:RelatesTo>{RELATES}</wsa:RelatesTo>
<wsa:To SOAP-ENV:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>
<wsa:Action SOAP-ENV:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action>
</SOAP-ENV:Header>
<SOAP-ENV:Body>
<d:ProbeMatches><d:ProbeMatch>
<wsa:EndpointReference><wsa:Address>urn:uuid:{UUID}</wsa:Address></wsa:EndpointReference>
<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>
<d:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/Profile/Streaming
 onvif://www.onvif.org/name/C%E1%BB%95ng%20ch%E1%BB%A3 onvif://www.onvif.org/hardware/DS-2CD1023G0E-I
 onvif://www.onvif.org/location/city/hanoi</d:Scopes>
<d:XAddrs>http://127.0.0.1/onvif/device_service http://192.168.1.64/onvif/device_service</d:XAddrs>
<d:MetadataVersion>10</d:MetadataVersion>
</d:ProbeMatch></d:ProbeMatches>
</SOAP-ENV:Body></SOAP-ENV:Envelope>""".encode()

# Cheap XMeye-style firmware: SOAP 1.1, WS-Discovery 2009/01, no ProbeMatches wrapper, unescaped space in a scope.
NO_WRAPPER = f"""<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:a="http://www.w3.org/2005/08/addressing"
 xmlns:w="http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01">
<s:Header><a:RelatesTo>{RELATES}</a:RelatesTo>
<a:Action>http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01/ProbeMatches</a:Action></s:Header>
<s:Body><w:ProbeMatch>
<a:EndpointReference><a:Address>uuid:AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE</a:Address></a:EndpointReference>
<w:Types>NetworkVideoTransmitter</w:Types>
<w:Scopes>onvif://www.onvif.org/name/Cong cho onvif://www.onvif.org/hardware/IPC</w:Scopes>
<w:XAddrs>http://0.0.0.0:8899/onvif/device_service</w:XAddrs>
</w:ProbeMatch></s:Body></s:Envelope>""".encode()

HELLO = f"""<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"
 xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery">
<s:Header><a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Hello</a:Action>
<a:MessageID>urn:uuid:9d5cbd3c-7e2e-4b3e-9d43-1f5a4d6c3b2a</a:MessageID></s:Header>
<s:Body><d:Hello><a:EndpointReference><a:Address>urn:uuid:{UUID}</a:Address></a:EndpointReference>
<d:Types>dn:NetworkVideoTransmitter</d:Types><d:Scopes>onvif://www.onvif.org/name/gate</d:Scopes>
<d:XAddrs>http://198.18.0.11/onvif/device_service</d:XAddrs><d:MetadataVersion>1</d:MetadataVersion>
</d:Hello></s:Body></s:Envelope>""".encode()

BYE = f"""<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"
 xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery">
<s:Header><a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Bye</a:Action></s:Header>
<s:Body><d:Bye><a:EndpointReference><a:Address>urn:uuid:{UUID}</a:Address></a:EndpointReference></d:Bye>
</s:Body></s:Envelope>""".encode()

CORPUS = (PROBE_MATCH, NO_WRAPPER, HELLO, BYE)

XXE = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><ProbeMatch>&x;</ProbeMatch></s:Body></s:Envelope>"""

LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'.encode()
               for i in range(1, 10))
    + b"]><Envelope><Body><ProbeMatch>&lol9;</ProbeMatch></Body></Envelope>"
)

# Lower-case doctype is not XML, but the expat handler must still refuse a DTD that slips past the byte check.
UTF16_DOCTYPE = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY a "b">]><Envelope/>'.encode("utf-16")

WRONG_NAMESPACES = PROBE_MATCH.replace(b"http://www.w3.org/2003/05/soap-envelope", b"urn:evil").replace(
    b"http://schemas.xmlsoap.org/ws/2005/04/discovery", b"urn:other"
)
