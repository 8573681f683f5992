"""The demo's console: a live table redrawn in place (a terminal), or one line per change (`--plain`, pipes, CI).

Rendering is pure (`render_screen(view, header, now)` -> text); `Console` only decides how to write it.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from agent.demo.view import StationView, clock, health_summary

HOME, CLEAR_LINE, CLEAR_BELOW = "\x1b[H", "\x1b[K", "\x1b[J"
HIDE_CURSOR, SHOW_CURSOR = "\x1b[?25l", "\x1b[?25h"
COLOURS = {"online": "\x1b[32m", "degraded": "\x1b[33m", "offline": "\x1b[31m"}
BOLD, DIM, RESET = "\x1b[1m", "\x1b[2m", "\x1b[0m"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True)
class Header:
    mode: str  # one line saying how the cameras are reached
    broker: str  # host:port (and namespace)
    pids: str  # "broker 12, agent 34, rtsp host 56"
    demo_dir: str
    agent_log: str
    cameras: int
    started: float  # monotonic


def fit(line: str, cols: int) -> str:
    """`line` cut to `cols` visible characters; a line that must be cut loses its colours (never half a code)."""
    plain = ANSI.sub("", line)
    if cols <= 0 or len(plain) < cols:
        return line
    return plain[: cols - 1]


def _relative(path: str, base: str) -> str:
    """A snapshot's path below the demo directory (named once in the header), so the line fits a terminal."""
    prefix = base.rstrip("/") + "/"
    return path[len(prefix):] if path.startswith(prefix) else path


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:5.1f} s"


def _elapsed(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def render_screen(view: StationView, header: Header, now: float, *, colour: bool = True) -> list[str]:
    """The whole screen as lines (without the ANSI cursor movement), the motion events last."""
    c = (lambda code, text: f"{code}{text}{RESET}") if colour else (lambda _code, text: text)
    lines = [
        c(BOLD, f"Mắt Thần demo: {header.cameras} simulated cameras") +
        f"   {clock(time.time())}   running {_elapsed(now - header.started)}",
        f"{header.mode}",
        f"broker {header.broker}   pids: {header.pids}   agent status: {view.agent_state}",
        c(DIM, f"files: {header.demo_dir}   agent log: {header.agent_log}   Ctrl-C stops everything"),
        "",
        c(BOLD, f"{'CAMERA':<14}{'STATE':<10}{'REASON':<20}{'FPS':>6}{'FRAME AGE*':>12}  MOTION"),
    ]
    for name in sorted(view.cameras):
        row = view.cameras[name]
        state = row.state.ljust(10)
        fps = "-" if row.fps is None else f"{row.fps:.1f}"
        motion = c(BOLD, "ON") if row.motion else c(DIM, "off")
        lines.append(f"{row.camera:<14}{c(COLOURS.get(row.state, ''), state)}{row.reason[:19]:<20}{fps:>6}"
                     f"{_age(row.last_frame_age_s):>12}  {motion}")
    if not view.cameras:
        lines.append(c(DIM, "(waiting for the agent to find the cameras...)"))
    lines.append(c(DIM, "* age of the last picture when the agent sent its latest health report"))
    lines.append("")
    if view.health is not None and view.health_at is not None:
        lines.append(c(BOLD, "HEALTH") + f" ({_age(now - view.health_at).strip()} ago)  {health_summary(view.health)}")
    else:
        lines.append(c(BOLD, "HEALTH") + c(DIM, "  (first report within 10 s of the agent's start)"))
    lines.append("")
    lines.append(c(BOLD, f"MOTION EVENTS  {view.event_starts} started, {view.event_ends} ended, "
                         f"{len(view.snapshots)} snapshot(s) saved"))
    for e in reversed(view.events):
        zones = ",".join(e.zones) or "-"
        snap = _relative(e.snapshot, header.demo_dir) if e.snapshot else "-"
        lines.append(f"{clock(e.ts)} {e.kind.upper():<5} {e.camera:<13} score {e.score:.3f}  zones {zones:<16} {snap}")
    if not view.events:
        lines.append(c(DIM, "(none yet: people and vehicles cross every camera within ~30 s)"))
    return lines  # events last, newest first: a short terminal cuts only the oldest


class Console:
    """Writes to `out`: a redrawn screen when `live`, else the station's lines as they come."""

    def __init__(self, out: TextIO = sys.stdout, *, plain: bool = False) -> None:
        self.out = out
        self.live = not plain and out.isatty()
        self._drawn = False

    def say(self, text: str) -> None:
        """A line that is not part of the live screen (start-up and shut-down progress)."""
        if self.live and self._drawn:
            self.out.write(SHOW_CURSOR + "\n")
            self._drawn = False
        self.out.write(text + "\n")
        self.out.flush()

    def update(self, view_lines: list[str], station_lines: list[str]) -> None:
        if not self.live:
            for line in station_lines:
                self.out.write(line + "\n")
            if station_lines:
                self.out.flush()
            return
        try:
            cols, rows = os.get_terminal_size(self.out.fileno())
        except (OSError, ValueError):
            cols, rows = 0, 0
        if rows > 1:  # a screen taller than the terminal (or lines that wrap) would scroll on every redraw
            view_lines = [fit(line, cols) for line in view_lines[: rows - 1]]
        body = "".join(line + CLEAR_LINE + "\n" for line in view_lines)
        self.out.write((HIDE_CURSOR if not self._drawn else "") + HOME + (CLEAR_BELOW if not self._drawn else "")
                       + body + CLEAR_BELOW)
        self.out.flush()
        self._drawn = True

    def close(self) -> None:
        """End the live screen (the cursor comes back); from now on station lines are printed as they come."""
        if self.live and self._drawn:
            self.out.write(SHOW_CURSOR)
            self.out.flush()
            self._drawn = False
        self.live = False
