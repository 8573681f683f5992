"""The shipped example is valid, plausible, and what check-config reports for it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import AgentConfig, load_config
from agent.logsetup import SecretRegistry

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "agent.example.yaml"


@pytest.fixture(scope="module")
def example() -> AgentConfig:
    return load_config(EXAMPLE, registry=SecretRegistry())


def test_example_passes_check_config_subprocess() -> None:
    """`python -m agent check-config config/agent.example.yaml` exits 0 with a one-line summary."""
    result = subprocess.run(
        [sys.executable, "-m", "agent", "check-config", str(EXAMPLE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "OK: 2 cameras configured" in result.stdout
    assert "topic prefix matthan/v1/xa-tan-phu/pi-ubnd" in result.stdout


def test_example_describes_tan_phu(example: AgentConfig) -> None:
    """The example is the commune xa-tan-phu with the market and crossroads cameras, each with a mask and zones."""
    assert example.site_id == "xa-tan-phu"
    names = [c.name for c in example.cameras]
    assert names == ["cho", "nga-ba"]
    for camera in example.cameras:
        assert camera.masks and camera.zones


def test_example_shows_every_key() -> None:
    """Every key of every section appears in the example, written or commented."""
    from agent.config.reference import _sections

    text = EXAMPLE.read_text(encoding="utf-8")
    missing = [
        f"{path}.{key}" if path else key
        for path, model in _sections("", AgentConfig)
        for key in model.model_fields
        if f"{key}:" not in text
    ]
    assert missing == []


KEY_LINE = re.compile(r"^(?P<indent>\s*(?:-\s+)?)(?P<key>[A-Za-z0-9_-]+):(?:\s|$)")
COMMENTED_KEY = re.compile(r"^\s*#\s*(?:-\s+)?[A-Za-z0-9_-]+:(?:\s|$)")  # `# port: 8883`: an option, not prose
QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")


def _has_inline_comment(line: str) -> bool:
    return re.search(r"\s#", QUOTED.sub('""', line)) is not None


def _is_prose_comment(line: str) -> bool:
    return line.lstrip().startswith("#") and not COMMENTED_KEY.match(line)


def undocumented_keys(text: str) -> list[str]:
    """Key lines with no comment: none on the line, none directly above it, none above its block.

    A block is a run of sibling keys (same indentation, no blank line between, commented-out options included);
    one prose comment line above the run explains all of them. A commented-out key is not an explanation.
    """
    lines = text.splitlines()
    missing = []
    for number, line in enumerate(lines):
        match = KEY_LINE.match(line)
        if match is None or _has_inline_comment(line):
            continue
        width = len(match["indent"])
        above = number - 1
        while above >= 0 and (
            COMMENTED_KEY.match(lines[above])
            or ((sibling := KEY_LINE.match(lines[above])) is not None and len(sibling["indent"]) == width)
        ):
            above -= 1  # climb to the first key of this block
        if above < 0 or not _is_prose_comment(lines[above]):
            missing.append(f"line {number + 1}: {line.strip()}")
    return missing


def test_example_comments_every_key() -> None:
    """Every key line of the example has a comment on the line, directly above it, or above its block."""
    assert undocumented_keys(EXAMPLE.read_text(encoding="utf-8")) == []


def test_comment_check_flags_bare_keys() -> None:
    """The check itself: a bare key is reported, also below a commented-out option; a commented block is not."""
    text = ("# the broker\nmqtt:\n  host: x   # where, '#1'\n  port: 1\n  # client_id: y\n  user: \"a # b\"\n\n"
            "# two keys explained together\na: 1\nb: 2\n")
    assert undocumented_keys(text) == ["line 4: port: 1", 'line 6: user: "a # b"']
