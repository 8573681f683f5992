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

# Most of the suite waits on real timeouts (broker outages, stalled streams), not on the CPU: four workers, each
# taking whole files (module-scoped sites stay together), bring 18 minutes down to about 5 on 2 cores.
JOBS="${MATTHAN_TEST_JOBS:-4}"
echo "==> pytest ($JOBS workers)" >&2
set +e
.venv/bin/python -m pytest --strict-markers -p no:cacheprovider -n "$JOBS" --dist loadfile "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests; that is a failure, not a pass" >&2
  exit 1
fi
exit "$rc"
