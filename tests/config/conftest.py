"""Helpers for config tests: write a YAML file, run the real `check-config` entry point on it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.cli import main

MINIMAL = """\
site_id: xa-tan-phu
agent_id: pi-test
mqtt:
  host: 127.0.0.1
"""


@dataclass
class CheckResult:
    code: int
    out: str
    err: str


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing `needle` (so tests need not hard-code line numbers)."""
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the test's YAML")


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str, name: str = "agent.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600)
        return path

    return write


@pytest.fixture
def check_config(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[..., CheckResult]]:
    """Run `matthan-agent check-config ARGS` in-process through the real CLI dispatcher."""

    def run(*args: str | Path) -> CheckResult:
        code = main(["check-config", *[str(a) for a in args]])
        captured = capsys.readouterr()
        return CheckResult(code, captured.out, captured.err)

    yield run
    # main() installs a stderr handler bound to capsys's stream; leave no handler pointing at a closed stream.
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_matthan", False):
            root.removeHandler(handler)
