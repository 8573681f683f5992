"""A corrupt or truncated outbox is set aside at start and replaced; seq keeps increasing across the replacement."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.outbox import Outbox, OutboxCorrupt, Priority, Record
from tests.outbox.conftest import rec

Make = Callable[..., Outbox]


def _aside(tmp_path: Path) -> list[Path]:
    return sorted(p for p in tmp_path.iterdir() if ".corrupt-" in p.name and not p.name.endswith(("-wal", "-shm")))


def test_integrity_garbage_file_set_aside(make_outbox: Make, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A file that is not a database is renamed with a timestamp, logged, and an empty outbox works."""
    (tmp_path / "outbox.sqlite3").write_bytes(b"this is not sqlite at all" * 100)
    with caplog.at_level(logging.ERROR):
        ob = make_outbox()
    assert len(_aside(tmp_path)) == 1 and "integrity" in caplog.text
    assert ob.stats().files_set_aside == 1 and ob.stats().depth == 0
    assert ob.put(rec()).startswith("agent1-1-")


def test_integrity_truncated_file_set_aside(make_outbox: Make, tmp_path: Path) -> None:
    """A database cut in half (a torn write on a worn SD card) is set aside and replaced; seq does not go back."""
    ob = make_outbox()
    last = ob.put_many([rec(size=3000) for _ in range(200)])[-1]
    ob.close()
    path = tmp_path / "outbox.sqlite3"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    ob2 = make_outbox()
    assert ob2.stats().files_set_aside == 1 and len(_aside(tmp_path)) == 1
    assert Outbox.seq_of(ob2.put(rec())) > Outbox.seq_of(last)


def test_integrity_damaged_pages_set_aside(make_outbox: Make, tmp_path: Path) -> None:
    """Overwritten pages in the middle of the file fail quick_check and the file is set aside."""
    ob = make_outbox()
    ob.put_many([rec(size=3000) for _ in range(100)])
    ob.close()
    path = tmp_path / "outbox.sqlite3"
    data = bytearray(path.read_bytes())
    for off in range(4096 * 2, len(data) - 4096, 4096 * 3):
        data[off:off + 512] = b"\xa5" * 512
    path.write_bytes(bytes(data))
    ob2 = make_outbox()
    assert ob2.stats().files_set_aside == 1
    ob2.put(rec())
    assert ob2.stats().depth == 1


def test_integrity_foreign_database_set_aside(make_outbox: Make, tmp_path: Path) -> None:
    """A valid SQLite file with somebody else's tables is not adopted."""
    conn = sqlite3.connect(tmp_path / "outbox.sqlite3")
    conn.execute("CREATE TABLE photos (id INTEGER)")
    conn.commit()
    conn.close()
    assert make_outbox().stats().files_set_aside == 1


def test_integrity_writer_does_not_set_aside(make_outbox: Make, tmp_path: Path) -> None:
    """Only the owner may replace the file; a worker that finds it corrupt raises instead."""
    (tmp_path / "outbox.sqlite3").write_bytes(b"garbage" * 1000)
    with pytest.raises((OutboxCorrupt, sqlite3.DatabaseError)):
        make_outbox(owner=False)
    assert _aside(tmp_path) == []


def _writer(path: str, n: int) -> None:
    ob = Outbox(path, agent_id="agent1", owner=False)
    ob.put_many([rec() for _ in range(n // 2)])
    for _ in range(n // 2):
        ob.put(rec())
    ob.close()


def test_put_from_worker_processes(make_outbox: Make, tmp_path: Path) -> None:
    """Camera worker processes (spawned) write the same file directly; seqs stay unique and counters exact."""
    owner = make_outbox()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path / "outbox.sqlite3"), 100)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    rows = owner.claim(1000)
    assert len(rows) == 300 and len({r.seq for r in rows}) == 300
    assert owner.stats().depth == 300 and owner.changed()


def _model_put(model: list[int], prio: int, n: int, cap: int) -> None:
    """Reference eviction: lowest class first, oldest first; one gap row (class 5) per evicting put."""
    over = len(model) + n - cap
    if over > 0:
        for _ in range(over):
            if not model:
                break
            victim = min(range(len(model)), key=lambda i: (model[i], i))
            del model[victim]
        model.append(int(Priority.GAP))
    model.extend([prio] * n)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.sampled_from(list(Priority)[:5]), st.integers(1, 6)), min_size=5, max_size=40))
def test_evict_matches_reference_model(tmp_path_factory: pytest.TempPathFactory,
                                       ops: list[tuple[Priority, int]]) -> None:
    """For any sequence of puts the stored classes, in seq order, equal a reference model of the eviction rule,
    rows never exceed the cap by more than the one gap row, and the byte counter matches the table."""
    d = tmp_path_factory.mktemp("prop")
    cap = 12
    ob = Outbox(d / "o.sqlite3", agent_id="p", max_rows=cap)
    model: list[int] = []
    try:
        for prio, n in ops:
            ob.put_many([Record("t", b"{}", prio) for _ in range(n)])
            _model_put(model, int(prio), n, cap)
            rows = ob.claim(100)  # claiming marks the gap row taken, so the next eviction starts a new one
            assert [int(r.priority) for r in rows] == model
            stats = ob.stats()
            assert stats.depth == len(rows) <= cap + 1
            assert stats.bytes == sum(len(r.payload) + len(r.topic) + 128 for r in rows)
    finally:
        ob.close()


_CRASH_WRITER = """
import sys
from agent.outbox import Outbox, Priority, Record
ob = Outbox(sys.argv[1], agent_id="agent1", max_rows=500_000, max_bytes=512 * 1024 * 1024)
with open(sys.argv[2], "a") as log:
    while True:
        ids = ob.put_many([Record("t/e", b"{" + b"x" * 300 + b"}", Priority.EVENT) for _ in range(5)])
        log.write(" ".join(ids) + "\\n")
        log.flush()
"""


def test_put_survives_sigkill_at_random_moments(tmp_path: Path) -> None:
    """A writer killed with SIGKILL mid-transaction, 10 times: the file stays intact and every batch whose ids
    were returned is there, with its seqs in order."""
    db, log = tmp_path / "outbox.sqlite3", tmp_path / "ids.log"
    rnd = random.Random(2)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for _ in range(10):
        p = subprocess.Popen([sys.executable, "-c", _CRASH_WRITER, str(db), str(log)], env=env)
        time.sleep(rnd.uniform(0.3, 0.9))  # the random moment of the kill
        p.send_signal(signal.SIGKILL)
        p.wait(10)
    lines = [ln.split() for ln in log.read_text().splitlines()]
    returned = [m for ids in lines if len(ids) == 5 for m in ids]  # a line cut by the kill is not counted
    ob = Outbox(db, agent_id="agent1", max_rows=500_000, max_bytes=512 * 1024 * 1024)
    try:
        assert ob.stats().files_set_aside == 0 and ob.stats().evicted_rows == 0
        stored = [r.msg_id for r in ob.claim(500_000)]
        assert len(returned) > 100
        assert set(returned) <= set(stored), f"{len(set(returned) - set(stored))} returned ids lost"
        assert [Outbox.seq_of(m) for m in stored] == sorted(Outbox.seq_of(m) for m in stored)
    finally:
        ob.close()
