#!/usr/bin/env bash
# The demo, from a fresh clone: Debian packages (as root), .venv, then `matthan-agent demo`: a local Mosquitto, six
# simulated cameras with people, vehicles, a light switch and an IR night switch, the agent against them, and a live
# console of what the police station would see. Ctrl-C stops it and everything it started.
# Usage: scripts/demo.sh [--duration S] [--cameras N] [--loopback] [--plain] [--dir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_setup.sh
. scripts/_setup.sh

ensure_apt_packages
ensure_venv ""  # a venv set up by scripts/test.sh (with the test extras) serves as it is

exec .venv/bin/matthan-agent demo "$@"
