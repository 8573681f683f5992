"""`matthan-agent discover`: flags, credentials, masking, and a run inside a namespace."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import build_parser
from agent.cli.discover import build_settings
from agent.discovery.report import render_json, render_table
from agent.discovery.results import Discovered, FailureReason, Interrogation, Via
from agent.discovery.service import DiscoveryReport, IpChange
from agent.discovery.wsd import Interface, ProbeStats
from agent.models import CameraInfo
from agent.simulator.netns import AGENT_IF, Lan
from tests.discovery.test_wsd import _start_publisher

REPO = Path(__file__).resolve().parents[2]


def _args(*argv: str):  # type: ignore[no-untyped-def]
    return build_parser().parse_args(["discover", *argv])


def test_cli_discover_settings_from_flags(tmp_path: Path) -> None:
    """Flags map onto settings; the credentials file adds sets after --user; passwords stay out of repr."""
    creds = tmp_path / "creds.yaml"
    creds.write_text("- {username: admin, password: 'abc123456'}\n- {username: viewer, password: v}\n")
    s = build_settings(_args("--interface", "lan0", "--timeout", "1.5", "--target", "198.18.0.11", "--user", "root",
                             "--password", "toor-secret", "--credentials-file", str(creds), "--min-width", "480",
                             "--no-events"))
    assert s.interfaces == ("lan0",) and s.probe_window_s == 1.5 and s.unicast_targets == ("198.18.0.11",)
    assert [c.user for c in s.credentials] == ["root", "admin", "viewer"]
    assert s.substream_min_width == 480 and s.check_events is False
    assert "toor-secret" not in repr(s) and "abc123456" not in repr(s)


def test_cli_discover_bad_flags_are_clear() -> None:
    """--password without --user, --save without --state-dir, and a /16 scan are refused in plain words."""
    with pytest.raises(ValueError, match="--password needs --user"):
        build_settings(_args("--password", "x"))
    with pytest.raises(ValueError, match="--save needs --state-dir"):
        build_settings(_args("--save"))
    with pytest.raises(ValueError, match="wider than a /24"):
        build_settings(_args("--scan", "10.0.0.0/16"))


def _report() -> DiscoveryReport:
    ok = Interrogation(
        CameraInfo(camera_id="cong-cho", ip="198.18.0.11", endpoint_uuid="5f5a69c2-e0ae-504f-829b-00ccba2d3f01",
                   manufacturer="Hik", model="DS-2CD", firmware="V5.5", auth="ok", stream_width=640,
                   stream_height=360, stream_encoding="H264", stream_uri="rtsp://admin:s3cr3t-pw@198.18.0.11:554/s2",
                   events_supported=True),
        ok=True, discovered=Discovered(ip="198.18.0.11", xaddr="", via=Via.MULTICAST))
    bad = Interrogation(CameraInfo(camera_id="ipc-aaaaaa", ip="198.18.0.12", auth="failed", error="auth failed"),
                        ok=False, reason=FailureReason.AUTH_FAILED, detail="user 'admin' refused", auth_attempts=3)
    return DiscoveryReport((ok, bad), ProbeStats(sent=4, rejected=2), (Interface(AGENT_IF, "198.18.0.2"),),
                           ip_changes=(IpChange("cong-cho", "198.18.0.40", "198.18.0.11"),), duration_s=1.2)


def test_cli_discover_table_masks_and_explains() -> None:
    """The table shows each camera, masks the RTSP password, and gives the reason and advice per failure."""
    text = render_table(_report())
    assert "s3cr3t-pw" not in text and "rtsp://admin:***@198.18.0.11:554/s2" in text
    assert "cong-cho" in text and "640x360 H264" in text and "Hik DS-2CD" in text
    assert "ipc-aaaaaa (198.18.0.12): auth failed - user 'admin' refused" in text
    assert "urn:uuid:5f5a69c2-e0ae-504f-829b-00ccba2d3f01" in text
    assert "moved from 198.18.0.40 to 198.18.0.11" in text
    assert "Ignored 2 malformed" in text


def test_cli_discover_json_shape() -> None:
    """JSON has one object per camera with the failure reason, and masks credentials too."""
    doc = json.loads(render_json(_report()))
    assert [c["id"] for c in doc["cameras"]] == ["cong-cho", "ipc-aaaaaa"]
    assert doc["cameras"][0]["rtsp_uri"] == "rtsp://admin:***@198.18.0.11:554/s2"
    assert doc["cameras"][1]["failure"] == "auth failed" and doc["cameras"][1]["auth_attempts"] == 3
    assert doc["ip_changes"] == [{"id": "cong-cho", "old_ip": "198.18.0.40", "new_ip": "198.18.0.11"}]


@pytest.mark.netns
def test_cli_discover_in_namespace_reports_failure(lan: Lan) -> None:
    """Run as a subprocess in the agent namespace: a WS-Discovery peer without ONVIF is listed as failed."""
    cam_ip = lan.add_camera_ip()
    pub = lan.call(lan.camera_ns, _start_publisher, cam_ip)
    try:
        proc = lan.run(lan.agent_ns, [sys.executable, "-m", "agent", "discover", "--json", "--interface", AGENT_IF,
                                      "--timeout", "1.5", "--no-events"],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    finally:
        pub.stop()
    assert proc.returncode == 2, proc.stderr
    doc = json.loads(proc.stdout)
    (cam,) = doc["cameras"]
    assert cam["ip"] == cam_ip and cam["name"] == "wsd peer" and cam["id"] == "wsd-peer"
    assert cam["failure"] == "no ONVIF answer" and cam["found_by"] == "multicast"


def test_cli_discover_unknown_interface_is_usage_error() -> None:
    """An --interface that does not exist exits 64 with the list of interfaces (no packet sent)."""
    proc = subprocess.run([sys.executable, "-m", "agent", "discover", "--interface", "nosuch0", "--timeout", "0.1"],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 64 and "no IPv4 interface named 'nosuch0'" in proc.stderr


def test_cli_discover_settings_from_config(tmp_path: Path) -> None:
    """--config maps the agent's discovery section and camera entries (with their credentials) onto settings."""
    cfg = tmp_path / "agent.yaml"
    cfg.write_text((REPO / "config" / "agent.example.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    cfg.chmod(0o600)
    s = build_settings(build_parser().parse_args(["--config", str(cfg), "discover", "--target", "198.18.0.99"]))
    assert s.unicast_targets == ("192.168.1.64", "198.18.0.99") and s.probe_window_s == 3.0
    assert [c.user for c in s.credentials] == ["admin"]
    by_ip = s.override_for("192.168.1.64", None)
    assert by_ip is not None and by_ip.name == "cho" and by_ip.credential is not None
    by_name = s.override_for("10.9.9.9", None, "Ngã ba")
    assert by_name is not None and by_name.name == "nga-ba"
