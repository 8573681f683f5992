#!/usr/bin/env python3
"""Check that every runtime dependency (and theirs) has a wheel for a Raspberry Pi (aarch64, Python 3.11).

A dependency that needs compiling on a Pi turns a five-minute install into an hour and a missing compiler into a
failed install in a village, so we keep the set wheel-only. This asks PyPI, so it is a script to run before
changing dependencies, not a test. Prints one JSON line and exits non-zero if a wheel is missing.

    .venv/bin/python scripts/check-aarch64-wheels.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

PLATFORMS = ("manylinux_2_28_aarch64", "manylinux2014_aarch64", "manylinux_2_17_aarch64")


def main() -> int:
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    deps = project["project"]["dependencies"]
    with tempfile.TemporaryDirectory() as dest:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--python-version", "3.11",
               "--implementation", "cp", "-d", dest]
        for platform in PLATFORMS:
            cmd += ["--platform", platform]
        proc = subprocess.run([*cmd, *deps], capture_output=True, text=True)
        wheels = sorted(p.name for p in Path(dest).glob("*.whl"))
    ok = proc.returncode == 0
    print(json.dumps({"check": "aarch64_wheels", "ok": ok, "dependencies": deps, "wheels": wheels,
                      "error": None if ok else proc.stderr.strip()[-2000:]}, ensure_ascii=False))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
