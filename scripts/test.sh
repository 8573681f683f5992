#!/usr/bin/env bash
# The whole test suite, from a fresh clone: Debian packages (as root), .venv, ruff, then pytest.
# Usage: scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_setup.sh
. scripts/_setup.sh

ensure_apt_packages
ensure_venv "[test]"

echo "==> ruff" >&2
.venv/bin/ruff check agent tests scripts

echo "==> pytest" >&2
set +e
.venv/bin/python -m pytest --strict-markers -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests; that is a failure, not a pass" >&2
  exit 1
fi
exit "$rc"
