"""`matthan-agent doctor` as a technician runs it: targets, exit codes, --json, Vietnamese, and the broker step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main
from agent.cli.doctor import BrokerTarget, probe_broker
from agent.health.hostchecks import broker_result
from tests.cli_tools.fakes import OnvifDevice, RtspServer, closed_port, onvif_server, rtsp_server

PW = "cam-secret-Xy7"


pytestmark = pytest.mark.usefixtures("english_no_config")


def doctor_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    rc = main(["doctor", *argv, "--json"])
    return rc, json.loads(capsys.readouterr().out)


def statuses(doc: dict) -> dict[str, str]:
    return {c["name"]: c["status"] for s in doc["sections"] for c in s["checks"]}


def test_doctor_cli_working_onvif_camera(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    """A camera whose ONVIF and RTSP steps work passes them; only the frame steps fail (the fake has no video)."""
    monkeypatch.setenv("CAM_PW", PW)
    with rtsp_server(RtspServer()) as rtsp, onvif_server(OnvifDevice()) as dev:
        dev.rtsp_url = rtsp.url
        rc, doc = doctor_json(capsys, "--onvif", f"127.0.0.1:{dev.port}", "--user", "admin",
                              "--password-env", "CAM_PW", "--no-host", "--timeout", "2", "--frames-seconds", "1")
    st = statuses(doc)
    steps = ("reachable", "onvif", "credentials", "clock_offset", "stream_uri", "rtsp")
    assert {k: st[k] for k in steps} == dict.fromkeys(steps, "pass")
    assert st["frames"] == "fail" and rc == 1 and doc["ok"] is False
    assert PW not in json.dumps(doc)


def test_doctor_cli_closed_port_names_step(capsys: pytest.CaptureFixture[str]) -> None:
    """A camera that refuses: the first step fails with a hint, later steps are skipped, exit 1."""
    rc = main(["doctor", "--onvif", f"127.0.0.1:{closed_port()}", "--no-host"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "[FAIL] IP reachable" in out and "→" in out and "[SKIP] ONVIF answers" in out
    assert "1 problem(s) found" in out


def test_doctor_cli_vietnamese(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """With LANG=vi_VN.UTF-8 the step names, details and hints are Vietnamese."""
    monkeypatch.setenv("LANG", "vi_VN.UTF-8")
    rc = main(["doctor", "--onvif", f"127.0.0.1:{closed_port()}", "--no-host"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "Kết nối được tới IP" in out and "từ chối kết nối" in out and "Phát hiện 1 vấn đề" in out
    assert "IP reachable" not in out


def test_doctor_cli_password_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    """A password given in a URL or on the command line appears nowhere in the output."""
    port = closed_port()
    main(["doctor", "--camera-url", f"rtsp://admin:{PW}@127.0.0.1:{port}/s", "--no-host"])
    main(["doctor", "--onvif", f"127.0.0.1:{port}", "--user", "admin", "--password", PW, "--no-host", "--json"])
    captured = capsys.readouterr()
    assert PW not in captured.out + captured.err


def test_doctor_cli_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown camera name, or a missing password variable, is a usage error (64) that says why."""
    assert main(["doctor", "cho"]) == 64
    assert "no camera 'cho'" in capsys.readouterr().err
    assert main(["doctor", "--onvif", "127.0.0.1", "--password-env", "NO_SUCH_VAR_X"]) == 64
    assert "NO_SUCH_VAR_X" in capsys.readouterr().err


def test_doctor_cli_camera_from_config(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    """`doctor NAME` takes the camera's url and credentials, and the broker, from the config file."""
    port = closed_port()
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        "site_id: xa-thu\n"
        f"mqtt:\n  host: 127.0.0.1\n  port: {closed_port()}\n"
        f"storage:\n  state_dir: {tmp_path}\n"
        "cameras:\n"
        f"  - name: cho\n    url: rtsp://127.0.0.1:{port}/stream2\n"
        f"    credentials:\n      username: admin\n      password: \"{PW}\"\n"
    )
    monkeypatch.setenv("MATTHAN_CONFIG", str(cfg))
    rc, doc = doctor_json(capsys, "cho")
    st = statuses(doc)
    assert rc == 1 and st["reachable"] == "fail" and st["broker"] == "fail" and st["disk"] == "pass"
    assert doc["sections"][0]["target"].startswith("Camera cho")
    assert PW not in json.dumps(doc)
    assert main(["doctor", "nobody"]) == 64


def test_doctor_cli_host_only_passes_without_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """With no camera and no config, only host checks run; skipped steps do not fail the run."""
    rc, doc = doctor_json(capsys, "--state-dir", str(tmp_path))
    st = statuses(doc)
    assert st["disk"] == "pass" and st["broker"] == "skip"
    assert rc == (0 if all(v != "fail" for v in st.values()) else 1)


# -- the broker step against real Mosquitto brokers ----------------------------------------------------------------
@pytest.mark.broker
def test_doctor_broker_anonymous_ok(broker) -> None:  # type: ignore[no-untyped-def]
    """A plain anonymous broker: connected and logged in."""
    kind, detail = probe_broker(BrokerTarget(broker.host, broker.port), timeout=5)
    assert kind is None, detail


@pytest.mark.broker
def test_doctor_broker_bad_password(auth_broker) -> None:  # type: ignore[no-untyped-def]
    """A wrong broker password is reported as an auth problem with the accounts hint; the right one passes."""
    good = probe_broker(BrokerTarget(auth_broker.host, auth_broker.port, user="agent", password=auth_broker.password))
    bad = probe_broker(BrokerTarget(auth_broker.host, auth_broker.port, user="agent", password="not-it-123"))
    assert good[0] is None, good
    assert bad[0] == "auth"
    r = broker_result(bad[0], host=auth_broker.host, port=auth_broker.port, tls=False, detail=bad[1])
    assert r.status == "fail" and "mqtt.username" in r.text()[2]


@pytest.mark.broker
def test_doctor_broker_tls(tls_broker, tls_material) -> None:  # type: ignore[no-untyped-def]
    """TLS with the right CA passes; with an unrelated CA it fails as a TLS problem."""
    ok = probe_broker(BrokerTarget(tls_broker.host, tls_broker.port, tls=True, ca_file=tls_broker.ca_path))
    wrong = probe_broker(BrokerTarget(tls_broker.host, tls_broker.port, tls=True,
                                      ca_file=tls_material.other_ca_cert))
    assert ok[0] is None, ok
    assert wrong[0] == "tls", wrong


@pytest.mark.broker
def test_doctor_broker_stopped(broker) -> None:  # type: ignore[no-untyped-def]
    """A stopped broker is "refused" with the host/port hint; through the CLI the run fails."""
    broker.stop()
    kind, _ = probe_broker(BrokerTarget(broker.host, broker.port), timeout=3)
    assert kind == "refused"


@pytest.mark.broker
def test_doctor_cli_broker_flag(capsys: pytest.CaptureFixture[str], auth_broker, monkeypatch: pytest.MonkeyPatch,
                                tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`--broker` with user and password variable checks that broker; the password is never printed."""
    monkeypatch.setenv("MQ_PW", auth_broker.password)
    rc, doc = doctor_json(capsys, "--broker", f"{auth_broker.host}:{auth_broker.port}", "--broker-user", "agent",
                          "--broker-password-env", "MQ_PW", "--state-dir", str(tmp_path))
    assert statuses(doc)["broker"] == "pass"
    assert auth_broker.password not in json.dumps(doc)
    del rc


def test_doctor_cli_camera_from_inventory(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    """`doctor NAME` for a discovered camera (not in the config) finds its address in the agent's inventory."""
    from agent.discovery.inventory import INVENTORY_FILE, Inventory
    from agent.models import CameraInfo

    monkeypatch.setenv("CAM_PW", PW)
    with onvif_server(OnvifDevice()) as dev:
        inv = Inventory(tmp_path / INVENTORY_FILE)
        entry = inv.update(CameraInfo(camera_id="", endpoint_uuid="urn:uuid:1234", ip="127.0.0.1", name="ngo-3",
                                      xaddr=f"http://127.0.0.1:{dev.port}/onvif/device_service"),
                           configured_name="ngo-3").entry
        inv.save()
        rc, doc = doctor_json(capsys, entry.camera_id, "--state-dir", str(tmp_path), "--user", "admin",
                              "--password-env", "CAM_PW", "--no-host", "--frames-seconds", "1", "--timeout", "2")
    st = statuses(doc)
    assert st["reachable"] == "pass" and st["onvif"] == "pass" and st["credentials"] == "pass", doc
    assert doc["sections"][0]["target"].startswith(f"Camera {entry.camera_id}")
    del rc


def test_doctor_cli_unlocated_camera_fails_run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    """A configured camera with no ip or url is found in the inventory by its uuid; one that discovery never found
    fails "IP reachable" with the discover hint instead of being left out, so the run exits 1."""
    from agent.discovery.inventory import INVENTORY_FILE, Inventory
    from agent.models import CameraInfo
    from tests.cli_tools.test_doctor_simulator import assert_hints

    uuid = "urn:uuid:5f0c2a8e-1d2b-4c3a-9e4f-0123456789ab"
    with onvif_server(OnvifDevice()) as dev:
        inv = Inventory(tmp_path / INVENTORY_FILE)
        inv.update(CameraInfo(camera_id="", endpoint_uuid=uuid, ip="127.0.0.1", name="cong",
                              xaddr=f"http://127.0.0.1:{dev.port}/onvif/device_service"))
        inv.save()
        cfg = tmp_path / "agent.yaml"
        cfg.write_text(
            f"site_id: xa-thu\nmqtt:\n  host: 127.0.0.1\nstorage:\n  state_dir: {tmp_path}\ncameras:\n"
            f"  - uuid: \"{uuid}\"\n    credentials:\n      username: admin\n      password: \"{PW}\"\n"
            "  - name: vuon\n")
        monkeypatch.setenv("MATTHAN_CONFIG", str(cfg))
        rc, doc = doctor_json(capsys, "--no-host", "--frames-seconds", "1", "--timeout", "2")
    assert_hints(doc)
    by_target = {s["target"]: {c["name"]: c for c in s["checks"]} for s in doc["sections"]}
    found = next(v for k, v in by_target.items() if uuid in k)
    lost = next(v for k, v in by_target.items() if "vuon" in k)
    assert found["reachable"]["status"] == "pass" and found["credentials"]["status"] == "pass"
    assert lost["reachable"]["status"] == "fail" and "discover" in lost["reachable"]["hint"]
    assert rc == 1 and doc["ok"] is False
