"""`matthan-agent status`: the running agent's cameras and health, read from its state file (no broker needed).

Exit codes: 0 the agent is running and the file is fresh; 3 the agent is not running or the file is stale (the
LSB "not running" code, as `systemctl status` uses); 1 the state file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_STATE_DIR = Path("/var/lib/matthan-agent")
EX_OK = 0
EX_UNREADABLE = 1
EX_NOT_RUNNING = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir", type=Path, default=None, metavar="DIR",
        help=f"the agent's state directory (default: storage.state_dir from the config, else {DEFAULT_STATE_DIR})",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for machines instead of a table")


def resolve_state_dir(args: argparse.Namespace) -> Path:
    """--state-dir, else the config's storage.state_dir when the config loads, else the default."""
    if getattr(args, "state_dir", None):
        return Path(args.state_dir)
    from agent.cli import default_config_path

    path = Path(getattr(args, "config", None) or default_config_path())
    if path.is_file():
        try:
            from agent.config import ConfigError, load_config
        except ImportError:
            return DEFAULT_STATE_DIR
        try:
            return Path(load_config(path).storage.state_dir)
        except (ConfigError, OSError):
            return DEFAULT_STATE_DIR
    return DEFAULT_STATE_DIR


def run(args: argparse.Namespace) -> int:
    from agent.health.statefile import StateFileError, StateFileMissing, read_state
    from agent.i18n import translator

    _ = translator().gettext
    state_dir = resolve_state_dir(args)
    try:
        state = read_state(state_dir)
    except StateFileMissing as exc:
        if args.json:
            print(json.dumps({"running": False, "problem": str(exc), "state_dir": str(state_dir)}))
        else:
            print(_("The agent is not running: no state file in %s.") % state_dir)
            print(_("Start it with: sudo systemctl start matthan-agent (see: journalctl -u matthan-agent)"))
        return EX_NOT_RUNNING
    except StateFileError as exc:
        if args.json:
            print(json.dumps({"running": False, "problem": str(exc), "state_dir": str(state_dir)}))
        else:
            print(_("Cannot read the agent's state: %s") % exc, file=sys.stderr)
        return EX_UNREADABLE
    now = time.time()
    stale = state.stale_reason(now)
    stale_text = state.stale_reason(now, translate=_)
    if args.json:
        out = {
            "running": stale is None,
            "problem": stale,
            "state_file": str(state.path),
            "written_ts": state.written_ts,
            "pid": state.pid,
            "version": state.version,
            "started_ts": state.started_ts,
            "cameras": state.cameras,
            "health": state.health,
            "agent": state.extra,
        }
        print(json.dumps(out, ensure_ascii=False, indent=1))
    else:
        print(render(state, now, _))
        if stale is not None:
            print()
            print(_("WARNING: this is old information — %s.") % stale_text)
            print(_("Check the service: systemctl status matthan-agent; journalctl -u matthan-agent -n 50"))
    return EX_OK if stale is None else EX_NOT_RUNNING


# -- rendering (pure, tested) ----------------------------------------------------------------------------------
def ago(seconds: float | None, _: Any) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 90:
        return _("%d s ago") % round(seconds)
    if seconds < 90 * 60:
        return _("%d min ago") % round(seconds / 60)
    if seconds < 36 * 3600:
        return _("%d h ago") % round(seconds / 3600)
    return _("%d days ago") % round(seconds / 86400)


def _state_label(state: str, _: Any) -> str:
    labels = {"online": _("online"), "degraded": _("degraded"), "offline": _("offline")}
    return labels.get(state, state)


def reason_text(entry: dict[str, Any], _: Any) -> str:
    """The canonical message of the reason, translated, with the pipeline's detail kept as it was."""
    from agent.health.status import REASON_MESSAGES
    from agent.models import StatusReason

    try:
        reason = StatusReason(entry.get("reason", "none"))
    except ValueError:
        return str(entry.get("message", ""))
    base = REASON_MESSAGES[reason]
    message = str(entry.get("message") or "")
    detail = message[len(base):].strip() if message.startswith(base) else ""
    return f"{_(base)} {detail}".strip()


def _fps(entry: dict[str, Any]) -> str:
    fin, fan = entry.get("fps_in"), entry.get("fps_analysed")
    if fin is None and fan is None:
        return "-"
    a = "-" if fin is None else f"{fin:.1f}"
    b = "-" if fan is None else f"{fan:.1f}"
    return f"{a}/{b}"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def render(state: Any, now: float, _: Any) -> str:
    lines = [
        _("Mắt Thần agent %(version)s, pid %(pid)d, started %(started)s, state written %(written)s")
        % {
            "version": state.version, "pid": state.pid, "started": ago(now - state.started_ts, _),
            "written": ago(now - state.written_ts, _),
        },
    ]
    extra = state.extra or {}
    if extra.get("site_id") or extra.get("agent_id"):
        lines.append(_("Site %(site)s, agent %(agent)s") % {"site": extra.get("site_id", "?"),
                                                             "agent": extra.get("agent_id", "?")})
    if "broker_connected" in extra:
        lines.append(_("Station broker: connected") if extra["broker_connected"] else
                     _("Station broker: NOT connected — events are kept on disk and sent when the link is back"))
    lines.append("")
    known = extra.get("cameras") if isinstance(extra.get("cameras"), dict) else {}
    cams = state.cameras
    if not cams:
        lines.append(_("No cameras yet (discovery may still be running)."))
    else:
        header = [_("CAMERA"), _("IP"), _("STATE"), _("REASON"), _("SINCE"), _("FPS in/analysed"), _("LAST FRAME"),
                  _("LAST EVENT")]
        rows = [header]
        for cam, e in sorted(cams.items()):
            last_frame = e.get("last_frame_ts")
            last_event = e.get("last_event_ts")
            ip = (known.get(cam) or {}).get("ip") if isinstance(known.get(cam), dict) else None
            rows.append([
                cam, ip or "-", _state_label(str(e.get("state")), _), str(e.get("reason", "-")),
                ago(now - e["since"], _) if e.get("since") else "-", _fps(e),
                ago(now - last_frame, _) if last_frame else "-", ago(now - last_event, _) if last_event else "-",
            ])
        lines.append(_table(rows))
        problems = [(c, e) for c, e in sorted(cams.items()) if e.get("state") != "online"]
        if problems:
            lines.append("")
            for cam, e in problems:
                lines.append(f"  {cam}: {reason_text(e, _)}")
                setup = (known.get(cam) or {}).get("problem") if isinstance(known.get(cam), dict) else None
                if setup:
                    lines.append(f"    {setup}")
    lines.append("")
    lines.extend(render_health(state.health, _))
    return "\n".join(lines)


def render_health(health: dict[str, Any] | None, _: Any) -> list[str]:
    if not health:
        return [_("Health: no sample yet (the first one is taken a minute after start).")]
    host = health.get("host") or {}
    out = [_("Health:")]
    temp = host.get("temperature_c")
    out.append("  " + _("temperature: %s") % (f"{temp:.1f} °C" if temp is not None else _("no sensor")))
    throttling = host.get("throttling")
    if throttling is None:
        out.append("  " + _("power/throttling: not a Raspberry Pi or vcgencmd not available"))
    else:
        active = [k for k, v in throttling.items() if v is True]
        out.append("  " + _("power/throttling: %s") % (", ".join(active) if active else _("ok")))
    disk = host.get("disk")
    if disk:
        out.append("  " + _("disk free: %(free).1f GB (%(pct)s%%)")
                   % {"free": disk["free_bytes"] / 1e9, "pct": disk.get("free_pct")})
    mem = host.get("memory")
    if mem:
        out.append("  " + _("memory used: %s%%") % mem.get("used_pct"))
    if host.get("cpu_pct") is not None:
        out.append("  " + _("CPU: %s%%") % host["cpu_pct"])
    wifi = host.get("wifi")
    out.append("  " + _("wifi: %s") % (
        f"{wifi['interface']} {wifi['signal_dbm']:.0f} dBm, {wifi['link_quality']:.0f}/70" if wifi else _("not used")))
    outbox = health.get("outbox") or {}
    if outbox:
        shown = [k for k in ("depth", "oldest_age_s", "dead_letters", "evicted_rows") if k in outbox] or sorted(outbox)
        parts = [f"{k}={round(v) if isinstance(v, float) else v}" for k, v in ((k, outbox[k]) for k in shown)]
        out.append("  " + _("outbox: %s") % ", ".join(parts))
    return out
