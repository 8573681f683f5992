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
# A .venv that scripts/test.sh set up (with the test extras) has everything the demo needs: asking for "" would
# reinstall the package (and fetch setuptools) on every switch between the two scripts.
extras=""
if [ "$(cat .venv/.matthan-installed 2>/dev/null)" = "$(sha256sum pyproject.toml | cut -d' ' -f1)[test]" ]; then
  extras="[test]"
fi
ensure_venv "$extras"

exec .venv/bin/matthan-agent demo "$@"
