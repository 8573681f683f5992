"""Who the doctor examines: cameras from the command line, the config, or the discovery inventory; and the broker."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_STATE_DIR = Path("/var/lib/matthan-agent")
INVENTORY_FILE = "inventory.json"  # written by agent.discovery.inventory in the state dir


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
    cfg = _load_config(args, required=False)
    password = args.password if args.password is not None else _env_secret(args.password_env)
    if adhoc:
        host, port = _split_host_port(args.onvif, 80) if args.onvif else (None, None)
        from urllib.parse import urlsplit

        url_host = urlsplit(args.camera_url).hostname if args.camera_url else None
        plan.cameras.append(CameraProbe(
            name=args.camera or host or url_host or "camera", host=host, onvif_port=port, rtsp_url=args.camera_url,
            user=args.user, password=password, timeout_s=args.timeout,
        ))
    else:
        entries = [] if cfg is None else [
            e for e in cfg.cameras if args.camera is None or args.camera in (e.name, str(e.ip), e.uuid)]
        default_creds = cfg.discovery.credentials[0] if cfg is not None and cfg.discovery.credentials else None
        state_dir = Path(args.state_dir or (cfg.storage.state_dir if cfg is not None else DEFAULT_STATE_DIR))
        if args.camera and not (entries and (entries[0].ip or entries[0].url)):
            # A discovered camera: its address is in the inventory the agent keeps in the state dir.
            found = inventory_camera(state_dir, args.camera, entries[0].uuid if entries else None)
            if found is None:
                where = "the config or " if cfg is not None else ""
                raise UsageProblem(f"no camera {args.camera!r} in {where}the inventory {state_dir}/{INVENTORY_FILE}; "
                                   "give it with --onvif HOST[:PORT] or --camera-url URL")
            creds = entries[0].credentials if entries and entries[0].credentials else default_creds
            host, port = found
            plan.cameras.append(CameraProbe(
                name=args.camera, host=host, onvif_port=port,
                user=args.user or (creds.username if creds else None),
                password=password if password is not None else (creds.secret() if creds else None),
                timeout_s=args.timeout,
            ))
            entries = []
        for e in entries:
            host, port = (str(e.ip), 80) if e.ip else (None, None if e.url else 80)
            if e.ip is None and e.url is None:
                # Matched by name or uuid when discovered: look for it in the inventory. Not found, it is still
                # checked, and its first step fails (no address known): the run must not pass without it.
                host, port = inventory_camera(state_dir, e.name or "", e.uuid) or (None, 80)
            creds = e.credentials or default_creds
            plan.cameras.append(CameraProbe(
                name=e.label(), host=host, onvif_port=port, rtsp_url=e.url, user=creds.username if creds else None,
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


def inventory_camera(state_dir: Path, camera_id: str, uuid: str | None = None) -> tuple[str, int] | None:
    """(host, ONVIF port) of a discovered camera from the agent's inventory, by its id or its ONVIF endpoint uuid
    (urn:uuid:...), read-only; None if unknown."""
    from urllib.parse import urlsplit

    try:
        data = json.loads((state_dir / INVENTORY_FILE).read_text(encoding="utf-8"))
        cameras = data["cameras"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for entry in cameras.values() if isinstance(cameras, dict) else ():
        if not isinstance(entry, dict):
            continue
        info = entry.get("info") if isinstance(entry.get("info"), dict) else {}
        same_uuid = bool(uuid) and _uuid_key(info.get("endpoint_uuid")) == _uuid_key(uuid)
        if not (entry.get("camera_id") == camera_id or same_uuid):
            continue
        xaddr = info.get("xaddr")
        if isinstance(xaddr, str) and xaddr:
            try:
                parts = urlsplit(xaddr)
                return (info.get("ip") or entry.get("last_ip") or parts.hostname or ""), parts.port or 80
            except ValueError:
                pass
        ip = info.get("ip") or entry.get("last_ip")
        return (str(ip), 80) if ip else None
    return None


def _uuid_key(value: Any) -> str:
    return str(value or "").strip().lower().removeprefix("urn:uuid:")
