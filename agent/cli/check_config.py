"""`matthan-agent check-config [FILE]`: validate a configuration file and print every problem with its line.

Exit codes follow sysexits: 0 valid, 78 (EX_CONFIG) invalid, so an installer script or systemd's ExecStartPre can
refuse to start a daemon with a broken file.
"""

from __future__ import annotations

import argparse
import sys

EX_OK = 0
EX_CONFIG = 78


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="file to check (default: --config, then MATTHAN_CONFIG, then /etc/matthan-agent/agent.yaml)",
    )


def run(args: argparse.Namespace) -> int:
    # Imported here so that `matthan-agent --help` does not pay for pydantic.
    from agent.cli import default_config_path
    from agent.config import ConfigError, load_config

    path = args.file or getattr(args, "config", None) or default_config_path()
    try:
        config = load_config(path)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        count = len(exc.issues)
        print(
            f"check-config: {count} problem{'s' if count != 1 else ''} in {path}; fix and run check-config again",
            file=sys.stderr,
        )
        return EX_CONFIG
    count = len(config.cameras)
    tls = ", TLS" if config.mqtt.tls_enabled else ""
    print(
        f"{path}: OK: {count} camera{'s' if count != 1 else ''} configured, "
        f"broker {config.mqtt.host}:{config.mqtt.broker_port}{tls}, topic prefix {config.topic_prefix}"
    )
    return EX_OK
