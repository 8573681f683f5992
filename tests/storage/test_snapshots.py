"""The snapshot store: atomic JPEG files under a byte quota, oldest evicted first."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.storage import SnapshotStore


def test_snapshots_put_writes_named_file(tmp_path: Path) -> None:
    """put() writes <name>.jpg with the exact bytes and returns its path."""
    store = SnapshotStore(tmp_path)
    path = store.put("ev-1", b"\xff\xd8jpeg")
    assert path == tmp_path / "ev-1.jpg" and path.read_bytes() == b"\xff\xd8jpeg"


def test_snapshots_quota_evicts_oldest_first(tmp_path: Path) -> None:
    """Beyond the quota the oldest files go first; the newest always stays."""
    store = SnapshotStore(tmp_path, quota_bytes=1000)
    for i in range(5):
        store.put(f"ev-{i}", bytes(300))
    names = sorted(p.name for p in tmp_path.glob("*.jpg"))
    assert names == ["ev-2.jpg", "ev-3.jpg", "ev-4.jpg"]
    assert store.used_bytes <= 1000 and store.evicted == 2


def test_snapshots_replace_same_name_counts_once(tmp_path: Path) -> None:
    """Re-writing an event's snapshot (a better peak) replaces it without counting twice."""
    store = SnapshotStore(tmp_path, quota_bytes=1000)
    store.put("ev", bytes(600))
    store.put("ev", bytes(700))
    assert store.used_bytes == 700 and (tmp_path / "ev.jpg").stat().st_size == 700


def test_snapshots_existing_files_counted_and_temp_removed(tmp_path: Path) -> None:
    """At start the store counts files left from before and removes half-written temporaries."""
    (tmp_path / "old.jpg").write_bytes(bytes(800))
    (tmp_path / ".e1.jpg.k2j3.tmp").write_bytes(b"x")  # as write_atomic names its temporary file
    store = SnapshotStore(tmp_path, quota_bytes=1000)
    assert not (tmp_path / ".e1.jpg.k2j3.tmp").exists()
    store.put("new", bytes(500))
    assert not (tmp_path / "old.jpg").exists() and (tmp_path / "new.jpg").exists()


def test_snapshots_unsafe_name_sanitised(tmp_path: Path) -> None:
    """A name with path separators cannot escape the directory."""
    path = SnapshotStore(tmp_path).put("../../etc/passwd", b"x")
    assert path.parent == tmp_path


def test_snapshots_bigger_than_quota_refused(tmp_path: Path) -> None:
    """A single snapshot larger than the quota is refused with a clear error."""
    with pytest.raises(ValueError, match="quota"):
        SnapshotStore(tmp_path, quota_bytes=10).put("big", bytes(11))
