"""Discovery: find ONVIF cameras (WS-Discovery, subnet fallback), interrogate them, and remember them.

Public surface (import from the module named; `onvif`, `service` and `manager` pull in onvif-zeep-async):
    settings.DiscoverySettings, Credential, CameraOverride   plain settings; this package never imports agent.config
    wsd.probe(), wsd.HelloListener, wsd.list_interfaces()    WS-Discovery in our own code (asyncio)
    parse.parse_datagram()                                   safe, lenient datagram parsing (raises only ParseError)
    scan.scan_subnet()                                       opt-in fallback, at most a /24
    onvif.interrogate(), onvif.interrogate_all(), policy.AuthBudget
    inventory.Inventory                                      persistent, keyed by endpoint uuid; ids for topics
    service.discover_once()                                  one round: probe, scan, interrogate, record
    manager.DiscoveryManager                                 the daemon's loop: rounds, Hello re-interrogation, Bye
    report.render_table(), report.render_json()              what `matthan-agent discover` prints
"""
