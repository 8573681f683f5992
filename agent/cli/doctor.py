"""`matthan-agent doctor [CAMERA]`: check cameras and this host step by step, and say what to fix.

Targets: a camera named in the config (`doctor cho`), every configured camera (`doctor`), or one given on the
command line with no config at all (`doctor --onvif 192.168.1.64 --user admin --password-env CAM_PW`,
`doctor --camera-url rtsp://192.168.1.64:554/stream2`). Host checks: disk, temperature, power/throttling, clock
sync, and the broker (from the config, or `--broker HOST[:PORT]`).

The protocol steps (TCP, ONVIF SOAP, RTSP DESCRIBE) are the doctor's own (agent/health/probes.py); frames are read
with the agent's PyAV source and judged with the agent's motion detector. Exit 0 only when no check failed.
Output is Vietnamese when the locale is vi_*, English otherwise; `--json` prints the English texts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EX_OK = 0
EX_PROBLEMS = 1
EX_USAGE = 64
DEFAULT_STATE_DIR = Path("/var/lib/matthan-agent")
FRAMES_SECONDS = 4.0  # long enough to see a frozen picture and 2+ frames of a 1 fps substream
MAX_FRAMES = 40
BROKER_TIMEOUT_S = 8.0


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


@dataclass
class BrokerTarget:
    host: str
    port: int
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass
class Plan:
    cameras: list[Any] = field(default_factory=list)  # CameraProbe
    broker: BrokerTarget | None = None
    state_dir: Path = DEFAULT_STATE_DIR
    notes: list[str] = field(default_factory=list)


class UsageProblem(Exception):
    pass


def _split_host_port(text: str, default: int) -> tuple[str, int]:
    if text.count(":") == 1:
        host, port = text.rsplit(":", 1)
        if not port.isdigit():
            raise UsageProblem(f"bad port in {text!r}")
        return host, int(port)
    return text, default


def _env_secret(var: str | None) -> str | None:
    if not var:
        return None
    value = os.environ.get(var)
    if value is None:
        raise UsageProblem(f"environment variable {var} is not set")
    return value


def _load_config(args: argparse.Namespace, required: bool) -> Any:
    from agent.cli import default_config_path

    path = Path(getattr(args, "config", None) or default_config_path())
    if not path.is_file():
        if required:
            raise UsageProblem(f"no config file at {path}; give the camera with --onvif or --camera-url")
        return None
    from agent.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        raise UsageProblem(f"the config {path} has errors; run: matthan-agent check-config\n{exc}") from None


def make_plan(args: argparse.Namespace) -> Plan:
    from agent.health.checks import CameraProbe

    plan = Plan()
    adhoc = bool(args.onvif or args.camera_url)
    cfg = _load_config(args, required=bool(args.camera) and not adhoc)
    password = args.password if args.password is not None else _env_secret(args.password_env)
    if adhoc:
        host, port = _split_host_port(args.onvif, 80) if args.onvif else (None, None)
        from urllib.parse import urlsplit

        url_host = urlsplit(args.camera_url).hostname if args.camera_url else None
        plan.cameras.append(CameraProbe(
            name=args.camera or host or url_host or "camera", host=host, onvif_port=port, rtsp_url=args.camera_url,
            user=args.user, password=password, timeout_s=args.timeout,
        ))
    elif cfg is not None:
        entries = [e for e in cfg.cameras if args.camera is None or args.camera in (e.name, str(e.ip), e.uuid)]
        if args.camera and not entries:
            raise UsageProblem(f"no camera {args.camera!r} in the config")
        default_creds = cfg.discovery.credentials[0] if getattr(cfg.discovery, "credentials", ()) else None
        for e in entries:
            if e.ip is None and e.url is None:
                plan.notes.append(f"{e.label()}: no ip or url in the config; give --onvif HOST to check it")
                continue
            creds = e.credentials or default_creds
            plan.cameras.append(CameraProbe(
                name=e.label(), host=str(e.ip) if e.ip else None, onvif_port=80 if e.ip else None,
                rtsp_url=e.url, user=creds.username if creds else None,
                password=creds.secret() if creds else None, timeout_s=args.timeout,
            ))
    if args.broker:
        host, port = _split_host_port(args.broker, 8883 if (args.broker_ca or args.broker_tls) else 1883)
        plan.broker = BrokerTarget(host, port, tls=bool(args.broker_ca or args.broker_tls), ca_file=args.broker_ca,
                                   user=args.broker_user, password=_env_secret(args.broker_password_env))
    elif cfg is not None:
        m = cfg.mqtt
        tls = m.tls if m.tls_enabled else None
        plan.broker = BrokerTarget(
            m.host, m.broker_port, tls=tls is not None, ca_file=tls.ca_file if tls else None,
            cert_file=tls.cert_file if tls else None, key_file=tls.key_file if tls else None,
            insecure=bool(tls and tls.insecure), user=m.username, password=m.secret(),
        )
    if args.state_dir:
        plan.state_dir = args.state_dir
    elif cfg is not None:
        plan.state_dir = Path(cfg.storage.state_dir)
    return plan


# -- checks that need third-party libraries ------------------------------------------------------------------------
def grab_frames(url: str, user: str | None, password: str | None, seconds: float, timeout: float) -> list[Any]:
    """Up to MAX_FRAMES luma planes (copies) read for `seconds`; raises agent.video's SourceError on failure."""
    import threading
    import time
    from urllib.parse import quote, urlsplit

    import numpy as np

    from agent.models import DecodeMode
    from agent.video.pyav import AvSource
    from agent.video.settings import SourceSettings

    if user:
        parts = urlsplit(url)
        netloc = f"{quote(user, safe='')}:{quote(password or '', safe='')}@{parts.netloc}"
        url = parts._replace(netloc=netloc).geturl()
    settings = SourceSettings(open_timeout_s=timeout, read_timeout_s=timeout, decode_mode=DecodeMode.FULL,
                              hardware_decoder=False)
    source = AvSource(url, settings)
    stop = threading.Event()
    frames: list[Any] = []
    deadline: float | None = None  # counted from the first frame: opening a stream may take seconds by itself
    for frame in source.frames(stop):
        frames.append(np.array(frame.y, copy=True))
        now = time.monotonic()
        deadline = deadline or now + seconds
        if len(frames) >= MAX_FRAMES or now >= deadline:
            stop.set()
            break
    return frames


def check_frames(cam: Any, seconds: float) -> tuple[Any, list[Any]]:
    from agent.health.checks import failed, passed, skipped
    from agent.i18n import N_

    title = N_("frames arrive")
    if not cam.stream_uri:
        return skipped("frames", title, N_("no stream address known")), []
    try:
        from agent.video.errors import SourceError
    except ImportError:
        return skipped("frames", title, N_("the video module is not installed in this build")), []
    import time

    start = time.monotonic()
    try:
        frames = grab_frames(cam.stream_uri, cam.user, cam.password, seconds, cam.timeout_s)
    except SourceError as exc:
        return failed("frames", title, N_("%(reason)s: %(error)s"),
                      N_("The stream opens but no picture could be read. Power-cycle the camera; if it persists, "
                         "choose H.264 (not H.265) for the substream in the camera's web page."),
                      reason=str(exc.reason), error=exc.message), []
    elapsed = max(time.monotonic() - start, 1e-3)  # includes opening the stream
    if len(frames) < 2:
        return failed("frames", title, N_("only %(n)d frame(s) in %(s).0f s"),
                      N_("The camera sends too few frames. Check its frame rate setting (at least 2 fps on the "
                         "substream) and the network link quality."), n=len(frames), s=elapsed), frames
    h, w = frames[-1].shape[:2]
    return passed("frames", title, N_("%(n)d frames in %(s).1f s, %(w)dx%(h)d"), n=len(frames), s=elapsed,
                  w=w, h=h), frames


def check_motion(frames: list[Any]) -> Any:
    """The detector runs on the real picture, stays quiet on a still copy of it, and sees a square moving over it."""
    from agent.health.checks import failed, passed, skipped
    from agent.i18n import N_

    title = N_("motion detector sane")
    if len(frames) < 2:
        return skipped("motion", title, N_("not enough frames"))
    import math

    import numpy as np

    from agent.motion import MotionDetector

    base = frames[-1]
    h, w = base.shape[:2]
    det = MotionDetector()
    ts = 0.0
    quiet = []
    for _ in range(15):  # 3 s of the same picture: the background is learned, nothing moves
        ts += 0.2
        quiet.append(det.step(base, ts))
    moved = []
    side = max(8, min(h, w) // 5)
    for i in range(10):  # a bright square crossing the picture
        ts += 0.2
        img = base.copy()
        x = int((w - side) * i / 9)
        y = (h - side) // 2
        img[y:y + side, x:x + side] = 255 - img[y:y + side, x:x + side] // 4 if img.mean() < 128 else 0
        moved.append(det.step(img, ts))
    if any(not math.isfinite(r.score) for r in quiet + moved):
        return failed("motion", title, N_("the detector returned an invalid score"),
                      N_("Report this to the developers with the output of this command."))
    if any(r.motion for r in quiet[8:]):
        return failed("motion", title, N_("motion reported on a still picture"),
                      N_("The picture is too noisy for the detector; check the camera's image (night noise, "
                         "a dirty lens) or lower the sensitivity."))
    if not any(r.motion for r in moved):
        return failed("motion", title, N_("a moving test object was not detected"),
                      N_("Motion masks may cover the whole picture, or the sensitivity is too low; check the "
                         "camera's motion settings in the config."))
    del np
    return passed("motion", title, N_("quiet on a still picture, detects a moving object"))


def probe_broker(b: BrokerTarget, timeout: float = BROKER_TIMEOUT_S) -> tuple[str | None, str]:
    """Connect, log in, disconnect. Returns (None, "") or (kind, detail) with kind auth/tls/refused/timeout."""
    import ssl
    import threading

    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"matthan-doctor-{os.getpid()}",
                         protocol=mqtt.MQTTv5)
    client.connect_timeout = timeout
    if b.user:
        client.username_pw_set(b.user, b.password)
    if b.tls:
        ctx = ssl.create_default_context(cafile=str(b.ca_file) if b.ca_file else None)
        if b.cert_file and b.key_file:
            ctx.load_cert_chain(str(b.cert_file), str(b.key_file))
        if b.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        client.tls_set_context(ctx)
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        outcome["reason"] = reason
        done.set()

    client.on_connect = on_connect
    try:
        client.connect(b.host, b.port, keepalive=10)
    except ssl.SSLError as exc:
        return "tls", f"TLS: {exc.reason or exc}"
    except ConnectionRefusedError:
        return "refused", "connection refused"
    except TimeoutError:
        return "timeout", "no answer"
    except OSError as exc:
        return "timeout", exc.strerror or str(exc)
    client.loop_start()
    try:
        if not done.wait(timeout):
            return "timeout", "connected but the broker sent no CONNACK"
        reason = outcome["reason"]
        if reason.is_failure:
            kind = "auth" if reason.value in (0x04, 0x05, 0x86, 0x87, 0x8C) else "refused"
            return kind, f"CONNACK: {reason}"
        return None, ""
    finally:
        client.disconnect()
        client.loop_stop()


# -- running -----------------------------------------------------------------------------------------------------
def camera_checks(cam: Any, frames_seconds: float) -> list[Any]:
    """Every camera step in order; a step that cannot run because an earlier one failed is skipped, not failed."""
    from agent.health import checks as c
    from agent.i18n import N_

    out = [c.check_reachable(cam)]
    if not out[-1].ok:
        for name, title in c.CAMERA_STEPS[1:]:
            out.append(c.skipped(name, title, N_("skipped: the camera is not reachable")))
        return out
    out.append(c.check_onvif(cam))
    out.append(c.check_credentials(cam))
    out.append(c.check_clock_offset(cam))
    out.append(c.check_stream_uri(cam))
    out.append(c.check_rtsp(cam))
    if not out[-1].ok:
        cam.stream_uri = None
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
