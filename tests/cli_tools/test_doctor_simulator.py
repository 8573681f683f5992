"""The doctor against the project's simulated cameras (loopback mode): a healthy camera passes every step, and each
fault the simulator can inject makes the right step fail with a hint that fits it and the run exit 1.

The faults "gone" and "IP change" need a camera whose address disappears, which loopback cannot do: they are in
test_doctor_netns.py. Every doctor run here and there goes through `assert_hints`: no failed step without a hint.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agent.cli import main
from agent.health import checks
from agent.i18n import translator
from tests.rig.sim import running_cluster

pytestmark = [pytest.mark.rtsp, pytest.mark.usefixtures("english_no_config")]

CAMERAS = ["ok", "skewed", "wrongpw", "refusing", "stalled", "frozen", "rebooting"]
REBOOT_DOWN_S = 4.0  # long enough for one doctor run against a camera that is down (it fails in milliseconds)
FAULT_DEADLINE_S = 40.0  # the frozen picture starts at the next keyframe: a first run may straddle the moment


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    scenario = ({
        "cameras": [{"name": n, **({"clock_skew_s": 600} if n == "skewed" else {})} for n in CAMERAS],
    })
    with running_cluster(scenario) as c:
        yield c


# -- helpers shared with test_doctor_netns.py ----------------------------------------------------------------------
def assert_hints(doc: dict[str, Any]) -> None:
    """Every failed step of a `--json` run carries a non-empty hint."""
    bare = [c["name"] for s in doc["sections"] for c in s["checks"] if c["status"] == "fail" and not c["hint"].strip()]
    assert not bare, f"failed steps without a hint: {bare}"


def assert_text_hints(out: str) -> None:
    """Every [FAIL] line of a text run is followed by a non-empty → line."""
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if "[FAIL]" in line:
            nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
            assert re.fullmatch(r"→ \S.*", nxt), f"no hint after {line!r}"


def doctor_json(capsys: pytest.CaptureFixture[str], argv: list[str],
                call: Callable[..., int] = lambda fn, *a: fn(*a)) -> tuple[int, dict[str, dict[str, Any]], str]:
    """Run `doctor ... --json` (through `call`, e.g. inside a namespace): exit code, checks by name, raw output."""
    rc = call(main, ["doctor", *argv, "--json"])
    raw = capsys.readouterr().out
    doc = json.loads(raw)
    assert_hints(doc)
    assert doc["ok"] is (rc == 0)
    return rc, {c["name"]: c for s in doc["sections"] for c in s["checks"]}, raw


def first_failure(st: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The step the doctor names as failing: the first one in run order."""
    return next(c for c in st.values() if c["status"] == "fail")


def camera_argv(info: Any, *, user: bool = True, host: str | None = None) -> list[str]:
    """`doctor` arguments for a simulated camera (at `host` instead of its address); the password is in $SIM_PW."""
    login = ["--user", info.username, "--password-env", "SIM_PW"] if user else []
    return ["--onvif", f"{host or info.ip}:{info.onvif_port}", *login, "--no-host", "--frames-seconds", "2",
            "--timeout", "3"]


def doctor(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, info: Any,
           password: str | None = None, *, user: bool = True) -> tuple[int, dict[str, dict[str, Any]], str]:
    monkeypatch.setenv("SIM_PW", password if password is not None else info.password)
    return doctor_json(capsys, camera_argv(info, user=user))


# -- tests -------------------------------------------------------------------------------------------------------
def test_doctor_sim_healthy_camera_passes(cluster: Any, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A healthy simulated camera passes all nine steps and the doctor exits 0; its password is never printed."""
    info = cluster.info("ok")
    rc, st, raw = doctor(capsys, monkeypatch, info)
    assert {k: v["status"] for k, v in st.items()} == dict.fromkeys(st, "pass"), st
    assert len(st) == len(checks.CAMERA_STEPS) and rc == 0 and info.password not in raw


def test_doctor_sim_clock_skew(cluster: Any, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A camera 10 minutes fast: the login still works (WS-Security stamped in the camera's time), the clock fails."""
    rc, st, _ = doctor(capsys, monkeypatch, cluster.info("skewed"))
    assert st["credentials"]["status"] == "pass" and first_failure(st)["name"] == "clock_offset"
    assert "NTP" in st["clock_offset"]["hint"] and rc == 1


FAULTS = [  # camera, fault, its arguments, the step the doctor must name, a word its hint must contain
    pytest.param("refusing", "rtsp_refuse", {}, "rtsp", "refuses RTSP", id="refused"),
    pytest.param("stalled", "rtsp_stall", {}, "rtsp", "power-cycle", id="stalled"),
    pytest.param("frozen", "freeze", {}, "image", "Power-cycle", id="frozen"),
    pytest.param("wrongpw", "password_change", {"password": "changed-by-reset-42"}, "credentials", "factory",
                 id="password_changed"),
]


@pytest.mark.parametrize(("camera", "fault", "args", "step", "word"), FAULTS)
def test_doctor_sim_fault_names_step(cluster: Any, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch, camera: str, fault: str, args: dict[str, Any],
                                     step: str, word: str) -> None:
    """Each injected fault makes exactly its step the first to fail, with a hint that names the remedy; exit 1."""
    old_password = cluster.info(camera).password  # the technician still has the old one after a password change
    info = cluster.inject(camera, fault, **args)
    deadline = time.monotonic() + FAULT_DEADLINE_S
    while True:
        rc, st, raw = doctor(capsys, monkeypatch, info, password=old_password)
        if st[step]["status"] == "fail" or time.monotonic() > deadline:
            break
    assert first_failure(st)["name"] == step, st
    assert word in st[step]["hint"] and rc == 1
    assert old_password not in raw and info.password not in raw


def test_doctor_sim_reboot(cluster: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """While the camera reboots "IP reachable" fails with the wait-and-retry hint, printed in Vietnamese under
    vi_VN; once it is back, its reset clock (1970) fails "camera clock" with the power-cut hint."""
    info = cluster.inject("rebooting", "reboot", down_s=REBOOT_DOWN_S)
    monkeypatch.setenv("SIM_PW", info.password)
    monkeypatch.setenv("LANG", "vi_VN.UTF-8")
    rc = main(["doctor", *camera_argv(info)])
    out = capsys.readouterr().out
    alone = checks.check_reachable(checks.CameraProbe(name="x", host=info.ip, onvif_port=info.onvif_port))
    assert cluster.info("rebooting").down, "the camera came back during the run; raise REBOOT_DOWN_S"
    vi = translator("vi").gettext
    fails = [line for line in out.splitlines() if "[FAIL]" in line]
    hint = alone.text(vi)[2]
    assert len(fails) == 1 and vi("IP reachable") in fails[0] and f"→ {hint}" in out
    assert "khởi động lại" in hint and "rebooting" not in out and rc == 1
    assert_text_hints(out)

    monkeypatch.setenv("LANG", "C.UTF-8")
    rc, st, _ = doctor(capsys, monkeypatch, cluster.wait_up("rebooting", timeout=30))
    assert first_failure(st)["name"] == "clock_offset" and "1970" in st["clock_offset"]["detail"]
    assert "power cut" in st["clock_offset"]["hint"] and rc == 1


def test_doctor_sim_no_credentials_is_a_failure(cluster: Any, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A camera that requires a login, checked with no user name known: "credentials accepted" fails (it is not
    skipped) with the --user hint, and the run exits 1."""
    rc, st, _ = doctor(capsys, monkeypatch, cluster.info("ok"), user=False)
    assert first_failure(st)["name"] == "credentials" and "--user" in st["credentials"]["hint"]
    assert rc == 1 and st["onvif"]["status"] == "pass"
