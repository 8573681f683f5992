"""`matthan-agent doctor [CAMERA]`: check cameras and this host step by step, and say what to fix.

Targets: a camera named in the config (`doctor cho`), every configured camera (`doctor`), or one given on the
command line with no config at all (`doctor --onvif 192.168.1.64 --user admin --password-env CAM_PW`,
`doctor --camera-url rtsp://192.168.1.64:554/stream2`). Host checks: disk, temperature, power/throttling, clock
sync, and the broker (from the config, or `--broker HOST[:PORT]`).

The protocol steps (TCP, ONVIF SOAP, RTSP DESCRIBE) are the doctor's own (agent/health/probes.py); frames are read
with the agent's PyAV source and judged with the agent's motion detector. Exit 0 only when no check failed. A step
is skipped only when there is nothing to check or an earlier step failed; a check that could not be made for a
reason the technician must act on (no password known, no address known) fails (docs/technician.md).
Output is Vietnamese when the locale is vi_*, English otherwise; `--json` prints the English texts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.cli.doctor.broker import probe_broker
from agent.cli.doctor.media import check_frames, check_motion, grab_frames
from agent.cli.doctor.targets import BrokerTarget, Plan, UsageProblem, make_plan

EX_OK = 0
EX_PROBLEMS = 1
EX_USAGE = 64
FRAMES_SECONDS = 4.0  # long enough to see a frozen picture and 2+ frames of a 1 fps substream

__all__ = ["BrokerTarget", "Plan", "add_arguments", "camera_checks", "check_frames", "check_motion", "grab_frames",
           "host_checks", "make_plan", "probe_broker", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("camera", nargs="?", help="camera name from the config (default: every configured camera)")
    parser.add_argument("--onvif", metavar="HOST[:PORT]", help="check the ONVIF camera at this address (no config)")
    parser.add_argument("--camera-url", metavar="URL", help="check this stream URL (rtsp://...) (no config)")
    parser.add_argument("--user", help="camera user name")
    parser.add_argument("--password", help="camera password (visible in `ps`; prefer --password-env)")
    parser.add_argument("--password-env", metavar="VAR", help="environment variable holding the camera password")
    parser.add_argument("--broker", metavar="HOST[:PORT]", help="check this MQTT broker instead of the config's")
    parser.add_argument("--broker-user", help="MQTT user name for --broker")
    parser.add_argument("--broker-password-env", metavar="VAR", help="environment variable with the MQTT password")
    parser.add_argument("--broker-ca", type=Path, metavar="FILE", help="CA file for --broker (implies TLS)")
    parser.add_argument("--broker-tls", action="store_true", help="use TLS for --broker with the system CAs")
    parser.add_argument("--state-dir", type=Path, metavar="DIR", help="state directory for the disk check")
    parser.add_argument("--no-host", action="store_true", help="skip the host checks")
    parser.add_argument("--frames-seconds", type=float, default=FRAMES_SECONDS, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each network step")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")


# -- running -----------------------------------------------------------------------------------------------------
def camera_checks(cam: Any, frames_seconds: float) -> list[Any]:
    """Every camera step in order; a step that cannot run because an earlier one failed is skipped, not failed."""
    from agent.health import checks as c
    from agent.i18n import N_

    out = [c.check_reachable(cam)]
    if not out[-1].ok:
        for name, title in c.CAMERA_STEPS[len(out):]:
            out.append(c.skipped(name, title, N_("skipped: the camera is not reachable")))
        return out
    out.append(c.check_onvif(cam))
    out.append(c.check_credentials(cam))
    out.append(c.check_clock_offset(cam))
    out.append(c.check_stream_uri(cam))
    out.append(c.check_rtsp(cam))
    if not out[-1].ok:
        for name, title in c.CAMERA_STEPS[len(out):]:
            out.append(c.skipped(name, title, N_("skipped: the stream did not open")))
        return out
    frames_result, frames = check_frames(cam, frames_seconds)
    out.append(frames_result)
    out.append(c.check_image(frames))
    out.append(check_motion(frames))
    return out


def host_checks(plan: Plan) -> list[Any]:
    from agent.health import hostchecks as h
    from agent.health.checks import skipped
    from agent.i18n import N_

    out = [h.check_disk(plan.state_dir), h.check_temperature(), h.check_throttling(), h.check_clock_sync()]
    if plan.broker is None:
        out.append(skipped("broker", h.BROKER_TITLE, N_("no broker configured (give --config or --broker)")))
    else:
        b = plan.broker
        kind, detail = probe_broker(b)
        out.append(h.broker_result(kind, host=b.host, port=b.port, tls=b.tls, detail=detail))
    return out


MARKS = {"pass": "[ OK ]", "fail": "[FAIL]", "skip": "[SKIP]"}


def render(sections: list[tuple[str, list[Any]]], _: Any) -> str:
    lines: list[str] = []
    for heading, results in sections:
        lines.append(heading)
        for r in results:
            title, detail, hint = r.text(_)
            lines.append(f"  {MARKS[r.status]} {title}" + (f" — {detail}" if detail else ""))
            if r.status == "fail" and hint:
                lines.append(f"         → {hint}")
        lines.append("")
    failures = sum(1 for _h, rs in sections for r in rs if not r.ok)
    lines.append(_("Everything checked is fine.") if failures == 0 else
                 _("%d problem(s) found; see the → lines for what to do.") % failures)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from agent.i18n import translator
    from agent.logsetup import redact

    _ = translator().gettext
    try:
        plan = make_plan(args)
    except UsageProblem as exc:
        print(f"matthan-agent doctor: {exc}", file=sys.stderr)
        return EX_USAGE
    secrets = [s for s in [*(c.password for c in plan.cameras), plan.broker.password if plan.broker else None] if s]
    sections: list[tuple[str, list[Any]]] = []
    for cam in plan.cameras:
        sections.append((_("Camera %s") % cam.describe(), camera_checks(cam, args.frames_seconds)))
    if not args.no_host:
        sections.append((_("This box"), host_checks(plan)))
    if not sections:
        print(_("Nothing to check: no camera given or configured, and --no-host."), file=sys.stderr)
        return EX_USAGE
    ok = all(r.ok for _h, rs in sections for r in rs)
    if args.json:
        doc = {"ok": ok, "notes": plan.notes,
               "sections": [{"target": h, "checks": [r.to_dict() for r in rs]} for h, rs in sections]}
        text = json.dumps(doc, ensure_ascii=False, indent=1)
    else:
        text = render(sections, _)
        if plan.notes:
            text = "\n".join(plan.notes) + "\n\n" + text
    print(redact(text, secrets))  # a camera's error text could quote a URL; never print a password
    return EX_OK if ok else EX_PROBLEMS
