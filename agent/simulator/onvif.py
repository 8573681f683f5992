"""ONVIF device, media and event services of one simulated camera, as SOAP 1.2 replies zeep can parse.

Element names and order follow the WSDLs shipped with onvif-zeep-async (onvif/wsdl/*.wsdl, onvif.xsd).
Operations the ONVIF core spec allows before authentication (GetSystemDateAndTime, GetCapabilities, GetServices,
GetServiceCapabilities, ...) need no token; everything else needs a valid PasswordDigest token.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from agent.simulator.soap import Request, SoapFault, action_not_supported, iso

if TYPE_CHECKING:
    from agent.simulator.camera import SimulatedCamera

PRE_AUTH = {"GetSystemDateAndTime", "GetCapabilities", "GetServices", "GetServiceCapabilities", "GetWsdlUrl",
            "GetEndpointReference", "GetHostname"}
VSC = "VideoSourceConfig"  # the one video source configuration token
MOTION_TOPIC = "tns1:RuleEngine/CellMotionDetector/Motion"
PROFILES = (("MainStream", "main"), ("SubStream", "sub"))


def _ns(name: str) -> str:
    return f"http://www.onvif.org/ver10/{name}/wsdl"


def get_system_date_and_time(cam: SimulatedCamera) -> str:
    now = cam.camera_now()
    return (
        "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
        "<tt:DateTimeType>Manual</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
        "<tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone>"
        f"<tt:UTCDateTime>{_datetime(now)}</tt:UTCDateTime><tt:LocalDateTime>{_datetime(now)}</tt:LocalDateTime>"
        "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
    )


def _datetime(t: dt.datetime) -> str:
    return (f"<tt:Time><tt:Hour>{t.hour}</tt:Hour><tt:Minute>{t.minute}</tt:Minute><tt:Second>{t.second}</tt:Second>"
            f"</tt:Time><tt:Date><tt:Year>{t.year}</tt:Year><tt:Month>{t.month}</tt:Month><tt:Day>{t.day}</tt:Day>"
            "</tt:Date>")


def get_device_information(cam: SimulatedCamera) -> str:
    s = cam.spec
    return (f"<tds:GetDeviceInformationResponse><tds:Manufacturer>{s.manufacturer}</tds:Manufacturer>"
            f"<tds:Model>{s.model}</tds:Model><tds:FirmwareVersion>{s.firmware}</tds:FirmwareVersion>"
            f"<tds:SerialNumber>{cam.serial}</tds:SerialNumber><tds:HardwareId>{s.hardware}</tds:HardwareId>"
            "</tds:GetDeviceInformationResponse>")


def get_capabilities(cam: SimulatedCamera) -> str:
    base = cam.service_base()
    pull = "false" if cam.has_quirk("no_pullpoint") else "true"
    return (
        "<tds:GetCapabilitiesResponse><tds:Capabilities>"
        f"<tt:Device><tt:XAddr>{base}/onvif/device_service</tt:XAddr>"
        "<tt:Network><tt:IPFilter>false</tt:IPFilter><tt:ZeroConfiguration>false</tt:ZeroConfiguration>"
        "<tt:IPVersion6>false</tt:IPVersion6><tt:DynDNS>false</tt:DynDNS></tt:Network>"
        "<tt:System><tt:DiscoveryResolve>false</tt:DiscoveryResolve><tt:DiscoveryBye>true</tt:DiscoveryBye>"
        "<tt:RemoteDiscovery>false</tt:RemoteDiscovery><tt:SystemBackup>false</tt:SystemBackup>"
        "<tt:SystemLogging>false</tt:SystemLogging><tt:FirmwareUpgrade>false</tt:FirmwareUpgrade>"
        "<tt:SupportedVersions><tt:Major>2</tt:Major><tt:Minor>40</tt:Minor></tt:SupportedVersions></tt:System>"
        "<tt:Security><tt:TLS1.1>false</tt:TLS1.1><tt:TLS1.2>false</tt:TLS1.2>"
        "<tt:OnboardKeyGeneration>false</tt:OnboardKeyGeneration><tt:AccessPolicyConfig>false</tt:AccessPolicyConfig>"
        "<tt:X.509Token>false</tt:X.509Token><tt:SAMLToken>false</tt:SAMLToken>"
        "<tt:KerberosToken>false</tt:KerberosToken><tt:RELToken>false</tt:RELToken></tt:Security></tt:Device>"
        f"<tt:Events><tt:XAddr>{base}/onvif/events_service</tt:XAddr>"
        "<tt:WSSubscriptionPolicySupport>false</tt:WSSubscriptionPolicySupport>"
        f"<tt:WSPullPointSupport>{pull}</tt:WSPullPointSupport>"
        "<tt:WSPausableSubscriptionManagerInterfaceSupport>false</tt:WSPausableSubscriptionManagerInterfaceSupport>"
        "</tt:Events>"
        f"<tt:Media><tt:XAddr>{base}/onvif/media_service</tt:XAddr><tt:StreamingCapabilities>"
        "<tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP>"
        "</tt:StreamingCapabilities></tt:Media>"
        "</tds:Capabilities></tds:GetCapabilitiesResponse>"
    )


def get_services(cam: SimulatedCamera) -> str:
    base = cam.service_base()
    items = [(_ns("device"), "device_service"), (_ns("media"), "media_service"), (_ns("events"), "events_service")]
    body = "".join(
        f"<tds:Service><tds:Namespace>{ns}</tds:Namespace><tds:XAddr>{base}/onvif/{path}</tds:XAddr>"
        "<tds:Version><tt:Major>2</tt:Major><tt:Minor>40</tt:Minor></tds:Version></tds:Service>"
        for ns, path in items
    )
    return f"<tds:GetServicesResponse>{body}</tds:GetServicesResponse>"


def get_scopes(cam: SimulatedCamera) -> str:
    body = "".join(f"<tds:Scopes><tt:ScopeDef>Fixed</tt:ScopeDef><tt:ScopeItem>{s}</tt:ScopeItem></tds:Scopes>"
                   for s in cam.advert().scopes.split())
    return f"<tds:GetScopesResponse>{body}</tds:GetScopesResponse>"


def _profile(cam: SimulatedCamera, token: str, role: str) -> str:
    w, h = cam.spec.main if role == "main" else cam.spec.sub
    codec = cam.codec(role)
    enc = "H265" if codec == "h265" else "H264"
    gov = round(cam.spec.keyframe_s * cam.spec.fps)
    mw, mh = cam.spec.main
    codec_xml = (f"<tt:H264><tt:GovLength>{gov}</tt:GovLength><tt:H264Profile>Main</tt:H264Profile></tt:H264>"
                 if codec == "h264" else "")
    return (
        f'<trt:Profiles token="{token}" fixed="true"><tt:Name>{token}</tt:Name>'
        f'<tt:VideoSourceConfiguration token="{VSC}"><tt:Name>{VSC}</tt:Name><tt:UseCount>2</tt:UseCount>'
        f'<tt:SourceToken>VideoSource_1</tt:SourceToken><tt:Bounds x="0" y="0" width="{mw}" height="{mh}"/>'
        "</tt:VideoSourceConfiguration>"
        f'<tt:VideoEncoderConfiguration token="VideoEncoder_{role}"><tt:Name>VideoEncoder_{role}</tt:Name>'
        f"<tt:UseCount>1</tt:UseCount><tt:Encoding>{enc}</tt:Encoding>"
        f"<tt:Resolution><tt:Width>{w}</tt:Width><tt:Height>{h}</tt:Height></tt:Resolution>"
        "<tt:Quality>4</tt:Quality>"
        f"<tt:RateControl><tt:FrameRateLimit>{cam.spec.fps}</tt:FrameRateLimit>"
        "<tt:EncodingInterval>1</tt:EncodingInterval>"
        f"<tt:BitrateLimit>{3000 if role == 'main' else 1000}</tt:BitrateLimit></tt:RateControl>{codec_xml}"
        "<tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>0.0.0.0</tt:IPv4Address></tt:Address>"
        "<tt:Port>0</tt:Port><tt:TTL>1</tt:TTL><tt:AutoStart>false</tt:AutoStart></tt:Multicast>"
        "<tt:SessionTimeout>PT60S</tt:SessionTimeout></tt:VideoEncoderConfiguration></trt:Profiles>"
    )


def get_profiles(cam: SimulatedCamera) -> str:
    return f"<trt:GetProfilesResponse>{''.join(_profile(cam, t, r) for t, r in PROFILES)}</trt:GetProfilesResponse>"


def _role_of(req: Request) -> str:
    token = req.body.findtext("{http://www.onvif.org/ver10/media/wsdl}ProfileToken", default="").strip()
    for t, role in PROFILES:
        if token == t:
            return role
    raise SoapFault(f"no profile {token!r}", subcodes=("ter:InvalidArgVal", "ter:NoProfile"))


def _media_uri(uri: str, wrapper: str) -> str:
    return (f"<trt:{wrapper}><trt:MediaUri><tt:Uri>{uri}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
            "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri>"
            f"</trt:{wrapper}>")


def get_stream_uri(cam: SimulatedCamera, req: Request) -> str:
    return _media_uri(cam.stream_uri(_role_of(req), advertised=True), "GetStreamUriResponse")


def get_snapshot_uri(cam: SimulatedCamera, req: Request) -> str:
    _role_of(req)
    return _media_uri(cam.snapshot_uri(advertised=True), "GetSnapshotUriResponse")


def get_video_sources(cam: SimulatedCamera) -> str:
    w, h = cam.spec.main
    return (f'<trt:GetVideoSourcesResponse><trt:VideoSources token="VideoSource_1"><tt:Framerate>{cam.spec.fps}'
            f"</tt:Framerate><tt:Resolution><tt:Width>{w}</tt:Width><tt:Height>{h}</tt:Height></tt:Resolution>"
            "</trt:VideoSources></trt:GetVideoSourcesResponse>")


# -- events -------------------------------------------------------------------------------------------------
def get_event_properties(_cam: SimulatedCamera) -> str:
    return (
        "<tev:GetEventPropertiesResponse>"
        "<tev:TopicNamespaceLocation>http://www.onvif.org/onvif/ver10/topics/topicns.xml</tev:TopicNamespaceLocation>"
        "<wsnt:FixedTopicSet>true</wsnt:FixedTopicSet>"
        '<wstop:TopicSet><tns1:RuleEngine wstop:topic="true"><CellMotionDetector wstop:topic="true">'
        '<Motion wstop:topic="true"><tt:MessageDescription IsProperty="true"><tt:Source>'
        '<tt:SimpleItemDescription Name="VideoSourceConfigurationToken" Type="tt:ReferenceToken"/>'
        '<tt:SimpleItemDescription Name="VideoAnalyticsConfigurationToken" Type="tt:ReferenceToken"/>'
        '<tt:SimpleItemDescription Name="Rule" Type="xs:string"/></tt:Source><tt:Data>'
        '<tt:SimpleItemDescription Name="IsMotion" Type="xs:boolean"/></tt:Data></tt:MessageDescription>'
        "</Motion></CellMotionDetector></tns1:RuleEngine></wstop:TopicSet>"
        "<wsnt:TopicExpressionDialect>http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
        "</wsnt:TopicExpressionDialect>"
        "<wsnt:TopicExpressionDialect>http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete"
        "</wsnt:TopicExpressionDialect>"
        "<tev:MessageContentFilterDialect>http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter"
        "</tev:MessageContentFilterDialect>"
        "<tev:MessageContentSchemaLocation>http://www.onvif.org/onvif/ver10/schema/onvif.xsd"
        "</tev:MessageContentSchemaLocation></tev:GetEventPropertiesResponse>"
    )


def events_service_capabilities(cam: SimulatedCamera) -> str:
    pull = "false" if cam.has_quirk("no_pullpoint") else "true"
    return ('<tev:GetServiceCapabilitiesResponse><tev:Capabilities WSSubscriptionPolicySupport="false" '
            f'WSPullPointSupport="{pull}" WSPausableSubscriptionManagerInterfaceSupport="false" '
            'MaxNotificationProducers="0" MaxPullPoints="8"/></tev:GetServiceCapabilitiesResponse>')


def notification(is_motion: bool, when: dt.datetime, operation: str) -> str:
    return (
        '<wsnt:NotificationMessage><wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">'
        f"{MOTION_TOPIC}</wsnt:Topic><wsnt:Message>"
        f'<tt:Message UtcTime="{iso(when)}" PropertyOperation="{operation}"><tt:Source>'
        f'<tt:SimpleItem Name="VideoSourceConfigurationToken" Value="{VSC}"/>'
        '<tt:SimpleItem Name="VideoAnalyticsConfigurationToken" Value="VideoAnalyticsToken"/>'
        '<tt:SimpleItem Name="Rule" Value="MyMotionDetectorRule"/></tt:Source>'
        f'<tt:Data><tt:SimpleItem Name="IsMotion" Value="{"true" if is_motion else "false"}"/></tt:Data>'
        "</tt:Message></wsnt:Message></wsnt:NotificationMessage>"
    )


def create_pull_point_response(address: str, now: dt.datetime, until: dt.datetime) -> str:
    return ("<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference>"
            f"<wsa:Address>{address}</wsa:Address></tev:SubscriptionReference>"
            f"<wsnt:CurrentTime>{iso(now)}</wsnt:CurrentTime><wsnt:TerminationTime>{iso(until)}</wsnt:TerminationTime>"
            "</tev:CreatePullPointSubscriptionResponse>")


def pull_messages_response(messages: list[str], now: dt.datetime, until: dt.datetime) -> str:
    return (f"<tev:PullMessagesResponse><tev:CurrentTime>{iso(now)}</tev:CurrentTime>"
            f"<tev:TerminationTime>{iso(until)}</tev:TerminationTime>{''.join(messages)}</tev:PullMessagesResponse>")


def renew_response(now: dt.datetime, until: dt.datetime) -> str:
    return (f"<wsnt:RenewResponse><wsnt:TerminationTime>{iso(until)}</wsnt:TerminationTime>"
            f"<wsnt:CurrentTime>{iso(now)}</wsnt:CurrentTime></wsnt:RenewResponse>")


SIMPLE = {
    "GetSystemDateAndTime": get_system_date_and_time,
    "GetDeviceInformation": get_device_information,
    "GetCapabilities": get_capabilities,
    "GetServices": get_services,
    "GetScopes": get_scopes,
    "GetProfiles": get_profiles,
    "GetVideoSources": get_video_sources,
    "GetEventProperties": get_event_properties,
}
WITH_REQUEST = {"GetStreamUri": get_stream_uri, "GetSnapshotUri": get_snapshot_uri}


def unsupported(op: str) -> SoapFault:
    return action_not_supported(op)
