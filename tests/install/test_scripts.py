"""scripts/test.sh and its helpers: the missing-package hint a non-root user gets, and shellcheck on each script.

scripts/install.sh is checked by test_install.py; this module covers the scripts a developer or CI runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534  # root would install the package instead of printing the hint, so root runs the check as nobody
MISSING = "matthan-no-such-package"  # a Debian package that does not exist
SCRIPTS = ("scripts/test.sh", "scripts/_setup.sh", "scripts/demo.sh", ".ci/run")


def as_non_root(argv: list[str]) -> list[str]:
    """`argv` as this user when not root; under root as nobody through setpriv (util-linux), or skip without it."""
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root would call apt-get; setpriv (util-linux) is missing to run as nobody")
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]


def test_setup_missing_package_prints_install_hint() -> None:
    """A non-root run with a package missing exits non-zero and prints the exact `sudo apt-get install` line."""
    if shutil.which("dpkg-query") is None:
        pytest.skip("not a Debian-based system: _setup.sh refuses before looking at packages")
    script = '. scripts/_setup.sh; APT_PACKAGES=(bash "$1"); ensure_apt_packages; echo "should not get here"'
    out = subprocess.run(as_non_root(["bash", "-c", script, "bash", MISSING]), cwd=REPO, capture_output=True,
                         text=True, timeout=60, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C"})
    assert out.returncode != 0, out.stdout
    assert "should not get here" not in out.stdout
    lines = out.stderr.splitlines()
    assert "error: missing Debian packages. Run this once as root, then run this script again:" in lines, out.stderr
    assert f"  sudo apt-get install -y {MISSING}" in lines, out.stderr  # bash is installed, so only ours is listed


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_pass_shellcheck(script: str) -> None:
    """shellcheck (installed by scripts/_setup.sh) finds nothing in the scripts test.sh and CI run."""
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing; scripts/test.sh installs it (sudo apt-get install -y shellcheck)"
    out = subprocess.run([shellcheck, "--external-sources", script], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
