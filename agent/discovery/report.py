"""Rendering a discovery round for people (a table) and for scripts (JSON), with every credential masked."""

from __future__ import annotations

import json
from typing import Any

from agent.discovery.results import Interrogation
from agent.discovery.service import DiscoveryReport
from agent.logsetup import SECRETS, redact

COLUMNS = ("ID", "IP", "MAKE/MODEL", "FIRMWARE", "AUTH", "SUBSTREAM", "RTSP", "EVENTS", "FOUND BY")
MAX_CELL = 60  # keep a row on a technician's laptop screen


def mask_uri(uri: str | None) -> str | None:
    """rtsp://admin:secret@host/... -> rtsp://admin:***@host/...; password=... query values too."""
    return redact(uri, SECRETS.snapshot()) if uri else uri


def _events(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "?"}[value]


def _row_cells(row: Interrogation) -> list[str]:
    info = row.info
    make = " ".join(x for x in (info.manufacturer, info.model) if x) or "-"
    sub = "-"
    if info.stream_width:
        sub = f"{info.stream_width}x{info.stream_height} {info.stream_encoding or ''}".strip()
    via = row.discovered.via.value if row.discovered else "-"
    cells = [info.camera_id, info.ip or "-", make, info.firmware or "-", info.auth, sub,
             mask_uri(info.stream_uri) or "-", _events(info.events_supported), via]
    return [c if len(c) <= MAX_CELL else c[: MAX_CELL - 1] + "…" for c in cells]


def render_table(report: DiscoveryReport) -> str:
    ifaces = ", ".join(f"{i.name} ({i.ip})" for i in report.interfaces) or "none"
    lines = [f"Probed on {ifaces} in {report.duration_s:.1f} s; {len(report.rows)} camera(s) found."]
    if not report.rows:
        lines.append("No camera answered. Check that cameras are powered and on this LAN, try --target IP for a "
                     "camera you know, or --scan 192.168.1.0/24 for cameras that ignore WS-Discovery.")
        return "\n".join(lines)
    table = [list(COLUMNS)] + [_row_cells(r) for r in report.rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    for n, cells in enumerate(table):
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    uuids = [r for r in report.rows if r.info.endpoint_uuid]
    if uuids:
        lines += ["", "Endpoint ids (for `uuid:` in the config):"]
        lines += [f"  {r.info.camera_id}: urn:uuid:{r.info.endpoint_uuid}" for r in uuids]
    failed = [r for r in report.rows if not r.ok]
    if failed:
        lines += ["", "Problems:"]
        for r in failed:
            reason = r.reason.value if r.reason else "unknown"
            lines.append(f"  {r.info.camera_id} ({r.info.ip}): {reason} - {redact(r.detail, SECRETS.snapshot())}")
            lines.append(f"    what to do: {_advice(r)}")
    for ch in report.ip_changes:
        lines.append(f"Note: {ch.camera_id} moved from {ch.old_ip} to {ch.new_ip} (same camera, same id).")
    stats = report.probe_stats
    if stats.rejected or stats.foreign:
        lines.append(f"Ignored {stats.rejected} malformed and {stats.foreign} foreign WS-Discovery datagram(s).")
    return "\n".join(lines)


def _advice(row: Interrogation) -> str:
    reason = row.reason.value if row.reason else ""
    return {
        "auth failed": "give the camera's user and password (--user, --credentials-file, or the config); after "
                       "3 wrong tries the agent waits 10 minutes so the camera does not lock itself",
        "clock skew too large": "set the camera's clock (or enable NTP on it) and try again",
        "timeout": "the camera answered too slowly; check its wifi signal and try again",
        "no ONVIF answer": "enable ONVIF in the camera's web page (often under Network > Integration), and check "
                           "the port",
        "unsupported": "the camera's ONVIF lacks something the agent needs; give a direct stream url in the config",
    }.get(reason, "see the log for details")


def report_to_dict(report: DiscoveryReport) -> dict[str, Any]:
    cameras = []
    for r in report.rows:
        info = r.info
        cameras.append({
            "id": info.camera_id,
            "ip": info.ip,
            "endpoint_uuid": info.endpoint_uuid,
            "name": info.name,
            "location": info.location,
            "manufacturer": info.manufacturer,
            "model": info.model,
            "firmware": info.firmware,
            "serial": info.serial,
            "hardware_id": info.hardware_id,
            "mac": info.mac,
            "xaddr": info.xaddr,
            "auth": info.auth,
            "substream": {"width": info.stream_width, "height": info.stream_height,
                          "encoding": info.stream_encoding} if info.stream_width else None,
            "rtsp_uri": mask_uri(info.stream_uri),
            "snapshot_uri": mask_uri(info.snapshot_uri),
            "events_supported": info.events_supported,
            "ok": r.ok,
            "failure": r.reason.value if r.reason else None,
            "detail": redact(r.detail, SECRETS.snapshot()) or None,
            "auth_attempts": r.auth_attempts,
            "clock_skew_s": r.clock_skew_s,
            "found_by": r.discovered.via.value if r.discovered else None,
            "profiles": [{"token": p.token, "width": p.width, "height": p.height, "encoding": p.encoding}
                         for p in r.profiles],
        })
    s = report.probe_stats
    return {
        "interfaces": [{"name": i.name, "ip": i.ip} for i in report.interfaces],
        "duration_s": report.duration_s,
        "cameras": cameras,
        "ip_changes": [{"id": c.camera_id, "old_ip": c.old_ip, "new_ip": c.new_ip} for c in report.ip_changes],
        "probe": {"sent": s.sent, "received": s.received, "rejected": s.rejected, "foreign": s.foreign,
                  "duplicates": s.duplicates},
    }


def render_json(report: DiscoveryReport) -> str:
    return json.dumps(report_to_dict(report), indent=2, ensure_ascii=False)
