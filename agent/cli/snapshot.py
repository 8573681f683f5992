"""`matthan-agent snapshot SOURCE [-o FILE]`: save one fresh JPEG from a camera.

SOURCE is a URL (rtsp://, http:// for snapshot cameras, a video file) or a camera's name: a camera configured
with a `url`, or one that discovery recorded in the inventory (its stream URI, with the configured credentials).
For installers checking the view of a camera, and technicians checking that a camera still sends pictures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

EX_OK, EX_USAGE, EX_UNAVAILABLE, EX_CANTCREAT, EX_CONFIG = 0, 64, 69, 73, 78


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help="camera name, or an rtsp:// / http:// URL or a video file")
    parser.add_argument("-o", "--output", metavar="FILE", help="where to write the JPEG (default: ./<name>-<time>.jpg)")
    parser.add_argument("--user", help="user name to put into a URL that has none")
    parser.add_argument("--password", help="password for --user (default: $MATTHAN_CAMERA_PASSWORD)")
    parser.add_argument("--http-snapshot", action="store_true", help="SOURCE is an HTTP JPEG snapshot URL")
    parser.add_argument("--timeout", type=float, default=15.0, metavar="S", help="give up after S seconds (15)")


def _is_url_or_file(source: str) -> bool:
    return "://" in source or "/" in source or os.path.exists(source)  # camera ids never contain "/"


def _resolve_name(name: str, config_path: str) -> tuple[str, bool]:
    """(uri, is_http_snapshot) of a configured or discovered camera. Raises LookupError or ConfigError."""
    from agent.app.cameras import configured_cameras, discovered_camera
    from agent.config import load_config
    from agent.discovery.inventory import Inventory

    cfg = load_config(config_path)
    for cam in configured_cameras(cfg):
        if cam.camera_id == name and cam.uri:
            return cam.uri, cam.snapshot
    inventory_path = Path(cfg.storage.state_dir) / "inventory.json"
    if inventory_path.exists():
        entry = Inventory.load(inventory_path).get(name)
        if entry is not None:
            cam = discovered_camera(cfg, entry.info, credential_user=None, ok=True)
            if cam.uri:
                return cam.uri, cam.snapshot
            raise LookupError(f"camera {name} has no stream URI in the inventory ({cam.problem})")
    raise LookupError(f"no camera named {name!r} in {config_path} or in the inventory {inventory_path}; "
                      "run 'matthan-agent discover' to see the cameras on the LAN")


def run(args: argparse.Namespace) -> int:
    from agent.app.cameras import with_credentials
    from agent.camera.grab import SourceError, grab_jpeg
    from agent.cli import default_config_path
    from agent.config import ConfigError
    from agent.logsetup import SECRETS, redact

    source = args.source
    if _is_url_or_file(source):
        password = args.password if args.password is not None else os.environ.get("MATTHAN_CAMERA_PASSWORD")
        SECRETS.add([password])
        uri, http = with_credentials(source, args.user, password), args.http_snapshot
        name = "snapshot"
    else:
        config_path = args.config or default_config_path()
        try:
            uri, http = _resolve_name(source, config_path)
        except ConfigError as exc:
            for issue in exc.issues:
                print(issue, file=sys.stderr)
            return EX_CONFIG
        except LookupError as exc:
            print(f"matthan-agent snapshot: {exc}", file=sys.stderr)
            return EX_USAGE
        name = source
    try:
        jpeg = grab_jpeg(uri, snapshot=http, timeout_s=args.timeout)
    except SourceError as exc:
        print(f"matthan-agent snapshot: {redact(exc.message, SECRETS.snapshot())} ({exc.reason.value})",
              file=sys.stderr)
        return EX_UNAVAILABLE
    out = Path(args.output or f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.jpg")
    try:
        out.write_bytes(jpeg)
    except OSError as exc:
        print(f"matthan-agent snapshot: cannot write {out}: {exc.strerror}", file=sys.stderr)
        return EX_CANTCREAT
    print(f"{out} ({len(jpeg)} bytes)")
    return EX_OK
