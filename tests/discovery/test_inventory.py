"""The persistent inventory: identity across IP changes, friendly unique ids, atomic and corrupt-safe files."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from agent.discovery.inventory import Inventory, identity_key, slugify
from agent.models import CameraInfo

UUID_A = "5f5a69c2-e0ae-504f-829b-00ccba2d3f01"
UUID_B = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"


def _info(**kw: object) -> CameraInfo:
    return CameraInfo(camera_id="", **kw)  # type: ignore[arg-type]


def test_inventory_ip_change_keeps_id_and_reports(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A camera with the same endpoint uuid at a new IP keeps its id; the move is logged and in the history."""
    inv = Inventory.load(tmp_path / "inventory.json")
    first = inv.update(_info(endpoint_uuid=UUID_A, ip="10.0.0.11", name="Cổng chợ"), now=100.0)
    with caplog.at_level(logging.WARNING):
        moved = inv.update(_info(endpoint_uuid=UUID_A, ip="10.0.0.57"), now=200.0)
    assert first.created and not moved.created
    assert moved.entry.camera_id == first.entry.camera_id == "cong-cho"
    assert moved.ip_changed_from == "10.0.0.11" and moved.entry.last_ip == "10.0.0.57"
    assert [s.ip for s in moved.entry.ip_history] == ["10.0.0.11", "10.0.0.57"]
    assert moved.entry.first_seen == 100.0 and moved.entry.last_seen == 200.0
    assert "[cong-cho] IP address changed from 10.0.0.11 to 10.0.0.57" in caplog.text


def test_inventory_survives_reload(tmp_path: Path) -> None:
    """Saved entries come back identical after a reload (a restart of the agent)."""
    path = tmp_path / "state" / "inventory.json"
    inv = Inventory.load(path)
    inv.update(_info(endpoint_uuid=UUID_A, ip="10.0.0.11", model="DS-2CD", stream_width=640), now=1.0)
    inv.update(_info(endpoint_uuid=UUID_A, ip="10.0.0.12"), now=2.0)
    inv.save()
    again = Inventory.load(path)
    assert again.entries() == inv.entries()
    assert not list(path.parent.glob(".inventory.json.*"))  # no temp file left behind


def test_inventory_ids_friendly_and_unique() -> None:
    """Ids follow configured name, then name scope, then model + short uuid, and never collide."""
    inv = Inventory()
    a = inv.update(_info(endpoint_uuid=UUID_A, ip="10.0.0.1", name="gate"), configured_name="Nhà văn hoá")
    b = inv.update(_info(endpoint_uuid=UUID_B, ip="10.0.0.2", name="gate"))
    c = inv.update(_info(ip="10.0.0.3", name="gate"))
    d = inv.update(_info(ip="10.0.0.4", model="IPC-HFW1230S", endpoint_uuid="12345678-aaaa-4bbb-8ccc-000000000000"))
    assert [x.entry.camera_id for x in (a, b, c, d)] == ["nha-van-hoa", "gate", "gate-2", "ipc-hfw1230s-123456"]
    assert all(re.fullmatch(r"[a-z0-9-]+", x.entry.camera_id) for x in (a, b, c, d))


def test_inventory_fallback_keys_serial_mac_ip() -> None:
    """Without a uuid, serial+hardware id, then MAC, then IP identify the camera."""
    assert identity_key(_info(serial="S1", hardware_id="H", mac="AA:BB", ip="1.2.3.4")) == "serial:S1/H"
    assert identity_key(_info(mac="AA:BB:CC:DD:EE:FF", ip="1.2.3.4")) == "mac:aa:bb:cc:dd:ee:ff"
    assert identity_key(_info(ip="1.2.3.4")) == "ip:1.2.3.4"
    inv = Inventory()
    first = inv.update(_info(ip="10.0.0.5", serial="S1", hardware_id="H"))
    moved = inv.update(_info(ip="10.0.0.6", serial="S1", hardware_id="H"))
    assert moved.entry.camera_id == first.entry.camera_id and moved.ip_changed_from == "10.0.0.5"


def test_inventory_reused_ip_is_a_new_camera() -> None:
    """When DHCP gives a known camera's old IP to a different camera (other uuid), it gets its own entry."""
    inv = Inventory()
    inv.update(_info(endpoint_uuid=UUID_A, ip="10.0.0.5"))
    other = inv.update(_info(endpoint_uuid=UUID_B, ip="10.0.0.5"))
    assert other.created and len(inv.entries()) == 2


def test_inventory_scan_found_camera_gains_uuid() -> None:
    """A camera first known only by IP (subnet scan) keeps its id when it later answers with a uuid."""
    inv = Inventory()
    first = inv.update(_info(ip="10.0.0.9", model="X"))
    later = inv.update(_info(ip="10.0.0.9", endpoint_uuid=UUID_A))
    assert later.entry.camera_id == first.entry.camera_id and later.entry.key == f"uuid:{UUID_A}"


def test_inventory_failed_interrogation_keeps_learned_fields() -> None:
    """A failure updates auth and error but keeps the model and stream learned earlier."""
    inv = Inventory()
    inv.update(_info(endpoint_uuid=UUID_A, ip="10.0.0.5", model="M", stream_uri="rtsp://x", auth="ok"))
    after = inv.update(_info(endpoint_uuid=UUID_A, ip="10.0.0.5", auth="failed", error="auth failed")).entry.info
    assert (after.model, after.stream_uri, after.auth, after.error) == ("M", "rtsp://x", "failed", "auth failed")


def test_inventory_corrupt_file_set_aside(tmp_path: Path) -> None:
    """A corrupt inventory is renamed aside (kept for the technician) and the agent starts empty."""
    path = tmp_path / "inventory.json"
    path.write_text("{not json", encoding="utf-8")
    inv = Inventory.load(path)
    assert inv.entries() == ()
    assert len(list(tmp_path.glob("inventory.json.corrupt-*"))) == 1


def test_inventory_file_has_no_password(tmp_path: Path) -> None:
    """Stream URIs with credentials are stored as the camera gave them, but no credential field exists."""
    inv = Inventory(tmp_path / "inventory.json")
    inv.update(_info(endpoint_uuid=UUID_A, ip="10.0.0.5", auth="ok"))
    inv.save()
    doc = json.loads((tmp_path / "inventory.json").read_text(encoding="utf-8"))
    assert "password" not in json.dumps(doc)


def test_slugify_vietnamese() -> None:
    """Vietnamese names fold to ASCII, including đ."""
    assert slugify("Đường làng / #1+") == "duong-lang-1"



