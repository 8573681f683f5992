"""The console: a live table on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io
import json

from agent.demo.console import Console, Header, fit, render_screen
from agent.demo.view import StationView

P = "matthan/v1/demo/demo-agent"
HEADER = Header(mode="loopback mode", broker="127.0.0.1:1", pids="broker 1, agent 2, rtsp host 3",
                demo_dir="/d", agent_log="/d/agent.log", cameras=2, started=0.0)


def _view() -> StationView:
    v = StationView(P)
    v.handle(f"{P}/cameras/cho/status", json.dumps({"state": "online", "reason": "none"}).encode(), 0.0)
    v.handle(f"{P}/cameras/nga-ba/status", json.dumps({"state": "offline", "reason": "rtsp_refused"}).encode(), 0.0)
    v.handle(f"{P}/health", json.dumps({"ts": 1.0, "host": {"cpu_pct": 20.0}, "outbox": {"depth": 0},
                                        "cameras": {"cho": {"fps_in": 15.0, "last_frame_age_s": 0.1}}}).encode(), 5.0)
    v.snapshot_saved("ev-1", "/d/snapshots/ev-1.jpg")
    v.handle(f"{P}/events/motion", json.dumps({"type": "start", "event_id": "ev-1", "camera": "cho", "ts": 2.0,
                                               "score": 0.25, "zones": ["duong"]}).encode(), 5.0)
    return v


def test_console_render_shows_cameras_health_and_events() -> None:
    """The screen has one row per camera (state, reason, fps, frame age), the health line and the event list."""
    text = "\n".join(render_screen(_view(), HEADER, 10.0, colour=False))
    assert "cho           online    none" in text and "15.0" in text and "0.1 s" in text
    assert "nga-ba        offline   rtsp_refused" in text
    assert "cpu 20%" in text and "outbox depth 0" in text and "temperature n/a" in text
    assert "START cho" in text and " snapshots/ev-1.jpg" in text and "1 started" in text
    assert "\x1b[" not in text


def test_console_plain_when_not_a_terminal() -> None:
    """Written to a pipe or file, the console prints the station's lines, never ANSI screens."""
    out = io.StringIO()
    console = Console(out)
    assert not console.live
    console.update(["SCREEN"], ["line 1", "line 2"])
    console.close()
    assert out.getvalue() == "line 1\nline 2\n"


def test_console_live_redraws_in_place_on_a_terminal() -> None:
    """On a terminal the screen is redrawn from the top; closing brings the cursor back and switches to lines."""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    console = Console(out)
    console.update(["row"], ["ignored while live"])
    assert out.getvalue().startswith("\x1b[?25l\x1b[H") and "row\x1b[K" in out.getvalue()
    console.close()
    assert out.getvalue().endswith("\x1b[?25h") and not console.live
    console.update([], ["after"])
    assert out.getvalue().endswith("after\n")


def test_console_plain_flag_wins_over_a_terminal() -> None:
    """--plain prints lines even on a terminal."""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert not Console(Tty(), plain=True).live


def test_console_fit_cuts_long_lines_without_breaking_colour_codes() -> None:
    """A line wider than the terminal is cut to its visible width, colour codes dropped rather than cut in half."""
    assert fit("\x1b[1mshort\x1b[0m", 80) == "\x1b[1mshort\x1b[0m"
    assert fit("\x1b[32m" + "x" * 100 + "\x1b[0m", 80) == "x" * 79
