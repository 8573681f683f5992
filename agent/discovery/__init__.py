"""Discovery: find ONVIF cameras (WS-Discovery, subnet fallback), interrogate them, and remember them.

Modules: `wsd` (probe, Hello/Bye listener), `parse` (safe datagram parsing), `scan` (opt-in subnet fallback),
`onvif` (interrogation with onvif-zeep-async), `inventory` (persistent, keyed by endpoint uuid), `service`
(one discovery round end to end). `settings` holds the plain settings dataclass; this package never imports
agent.config. Import the heavy modules (`onvif`, `service`) only where they are used.
"""
