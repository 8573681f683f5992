"""`matthan-agent discover`: find ONVIF cameras on the LAN and show, per camera, what it answered or why not.

For installers and technicians on site. Needs no configuration file: credentials come from --user/--password,
--credentials-file, or the agent's config with --config. Nothing is written unless --save is given.

Exit status: 0 every camera found answered fully; 2 some camera failed (see the reasons); 1 nothing found;
64 bad arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

EX_OK, EX_NONE_FOUND, EX_SOME_FAILED, EX_USAGE = 0, 1, 2, 64
PASSWORD_ENV = "MATTHAN_ONVIF_PASSWORD"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--interface", action="append", default=[], metavar="IF",
                        help="probe on this interface (name or IPv4); repeatable; default: all non-loopback")
    parser.add_argument("--timeout", type=float, default=None, metavar="S",
                        help="seconds to wait for WS-Discovery answers (default 3, or the config's probe_timeout_s)")
    parser.add_argument("--target", action="append", default=[], metavar="IP",
                        help="also probe and interrogate this address directly (cameras behind multicast-dropping "
                             "wifi); repeatable")
    parser.add_argument("--no-multicast", action="store_true",
                        help="unicast probes to --target only (a target may be IP:port, e.g. the loopback simulator)")
    parser.add_argument("--scan", action="append", default=[], metavar="CIDR",
                        help="also scan this subnet (at most a /24) for cameras that ignore WS-Discovery")
    parser.add_argument("--user", help="ONVIF user name to try")
    parser.add_argument("--password",
                        help=f"ONVIF password (visible to other users in `ps`; prefer ${PASSWORD_ENV} or a prompt)")
    parser.add_argument("--credentials-file", metavar="FILE",
                        help="YAML list of {username, password} tried in order")
    parser.add_argument("--min-width", type=int, default=None, metavar="PX",
                        help="smallest substream width to pick (default 320)")
    parser.add_argument("--no-events", action="store_true", help="do not test PullPoint events")
    parser.add_argument("--state-dir", metavar="DIR",
                        help="use the agent's inventory in DIR for camera ids (read-only unless --save)")
    parser.add_argument("--save", action="store_true", help="with --state-dir: record what was found")


def _fail(message: str) -> int:
    print(f"matthan-agent discover: {message}", file=sys.stderr)
    return EX_USAGE


def _credentials_from_file(path: str) -> list[Any]:
    import yaml

    from agent.discovery.settings import Credential

    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if isinstance(data, dict):
        data = data.get("credentials", data.get("discovery", {}).get("credentials"))
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of {{username, password}} mappings")
    creds = []
    for n, item in enumerate(data, 1):
        if not isinstance(item, dict) or not (item.get("username") or item.get("user")):
            raise ValueError(f"{path}: entry {n} needs a username")
        creds.append(Credential(str(item.get("username") or item.get("user")), str(item.get("password") or "")))
    return creds


def settings_kwargs_from_config(cfg: Any) -> dict[str, Any]:
    """DiscoverySettings keyword arguments from a loaded `AgentConfig` (agent.config); the composition root
    uses this too, so the daemon and `discover --config` read the configuration the same way."""
    from agent.discovery.settings import CameraOverride, Credential

    disc = cfg.discovery
    cameras = []
    for cam in cfg.cameras:
        cred = None
        if cam.credentials is not None and cam.credentials.username:
            cred = Credential(cam.credentials.username, cam.credentials.secret() or "")
        cameras.append(CameraOverride(name=cam.name, ip=str(cam.ip) if cam.ip else None,
                                      endpoint_uuid=str(cam.uuid).removeprefix("urn:uuid:") if cam.uuid else None,
                                      credential=cred, substream_min_width=cam.min_stream_width))
    return {
        "interfaces": tuple(str(i) for i in disc.interfaces),
        "unicast_targets": tuple(str(t) for t in disc.targets),
        "scan_subnets": tuple(str(s) for s in disc.scan_subnets),
        "scan_rate_per_s": float(disc.scan_rate_per_s),
        "probe_window_s": float(disc.probe_timeout_s),
        "listen_hello": bool(disc.hello_listener),
        "credentials": tuple(Credential(c.username, c.secret() or "") for c in disc.credentials if c.username),
        "cameras": tuple(cameras),
        "substream_min_width": int(cfg.motion.min_stream_width),
    }


def _settings_from_config(path: str) -> dict[str, Any]:
    try:
        from agent.config.loader import load_config
    except ImportError as exc:
        raise ValueError(f"this build cannot read configuration files yet ({exc})") from None
    return settings_kwargs_from_config(load_config(path))


def build_settings(args: argparse.Namespace) -> Any:
    """DiscoverySettings from the flags (and the config file when --config is given). Raises ValueError."""
    from agent.discovery.settings import Credential, DiscoverySettings
    from agent.logsetup import SECRETS

    base: dict[str, Any] = _settings_from_config(args.config) if getattr(args, "config", None) else {}
    creds = list(base.get("credentials", ()))
    if args.user:
        password = args.password if args.password is not None else os.environ.get(PASSWORD_ENV)
        if password is None and sys.stdin.isatty():
            import getpass

            password = getpass.getpass(f"ONVIF password for {args.user}: ")
        creds.insert(0, Credential(args.user, password or ""))
    elif args.password is not None:
        raise ValueError("--password needs --user")
    if args.credentials_file:
        creds += _credentials_from_file(args.credentials_file)
    SECRETS.add(c.password for c in creds)
    if args.no_multicast and not args.target and not base.get("unicast_targets"):
        raise ValueError("--no-multicast needs at least one --target")
    if args.save and not args.state_dir:
        raise ValueError("--save needs --state-dir")
    kwargs: dict[str, Any] = {
        **base,
        "interfaces": tuple(args.interface) or base.get("interfaces", ()),
        "probe_window_s": args.timeout or base.get("probe_window_s", 3.0),
        "unicast_targets": tuple(dict.fromkeys([*base.get("unicast_targets", ()), *args.target])),
        "scan_subnets": tuple(dict.fromkeys([*base.get("scan_subnets", ()), *args.scan])),
        "credentials": tuple(dict.fromkeys(creds)),
        "check_events": not args.no_events,
        "multicast": not args.no_multicast,
        "listen_hello": False,
    }
    if args.min_width:
        kwargs["substream_min_width"] = args.min_width
    return DiscoverySettings(**kwargs)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from agent.discovery.inventory import INVENTORY_FILE, Inventory
    from agent.discovery.report import render_json, render_table

    try:
        from agent.config.issues import ConfigError
    except ImportError:  # a build without agent.config: --config then fails with a plain message
        ConfigError = ValueError
    try:
        settings = build_settings(args)
    except ConfigError as exc:
        return _fail(f"configuration problems:\n{exc}")
    except (ValueError, OSError) as exc:
        return _fail(str(exc))
    inventory = Inventory()
    if args.state_dir:
        inventory = Inventory.load(os.path.join(args.state_dir, INVENTORY_FILE))
        if not args.save:
            inventory.path = None  # read-only: ids from the agent's inventory, nothing written

    from agent.discovery.auth_store import budget_for
    from agent.discovery.service import discover_once

    # Failed logins count against the agent's own budget even when nothing else is saved: the camera locks the
    # account whichever process tried the wrong password.
    budget = budget_for(settings, args.state_dir) if args.state_dir else None
    try:
        report = asyncio.run(discover_once(settings, inventory=inventory, budget=budget))
    except ValueError as exc:  # an --interface that does not exist
        return _fail(str(exc))
    print(render_json(report) if args.json else render_table(report))
    if not report.rows:
        return EX_NONE_FOUND
    return EX_OK if all(r.ok for r in report.rows) else EX_SOME_FAILED
