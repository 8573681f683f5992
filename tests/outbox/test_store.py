"""Outbox behaviour: identity, durability across reopen, eviction order, gap records, caps, dead letters."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.outbox import ROW_OVERHEAD_BYTES, Outbox, Priority, Record
from tests.outbox.conftest import rec

Make = Callable[..., Outbox]


def test_put_msg_id_format_and_monotonic_seq(make_outbox: Make) -> None:
    """msg_id is <agent>-<boot>-<seq> and seq strictly increases, also across put_many."""
    ob = make_outbox()
    ids = [ob.put(rec()), *ob.put_many([rec() for _ in range(5)]), ob.put(rec())]
    seqs = [Outbox.seq_of(m) for m in ids]
    assert all(m.startswith(f"agent1-{ob.boot}-") for m in ids)
    assert seqs == sorted(seqs) and len(set(seqs)) == 7
    assert seqs == list(range(seqs[0], seqs[0] + 7))


def test_put_survives_reopen_and_boot_increments(make_outbox: Make) -> None:
    """Rows committed before close are there after reopening; the boot counter and seq move forward."""
    ob = make_outbox()
    first = ob.put(rec())
    boot = ob.boot
    ob.close()
    ob2 = make_outbox()
    assert ob2.boot == boot + 1
    rows = ob2.claim(10)
    assert [r.msg_id for r in rows] == [first]
    second = ob2.put(rec())
    assert Outbox.seq_of(second) > Outbox.seq_of(first) and second.startswith(f"agent1-{boot + 1}-")


def test_claim_cursor_and_ack_delete(make_outbox: Make) -> None:
    """claim honours after/upto cursors and counts attempts; ack deletes and fixes the counters."""
    ob = make_outbox()
    ids = ob.put_many([rec() for _ in range(6)])
    seqs = [Outbox.seq_of(m) for m in ids]
    assert [r.seq for r in ob.claim(2)] == seqs[:2]
    assert [r.seq for r in ob.claim(10, after_seq=seqs[1], upto_seq=seqs[3])] == seqs[2:4]
    again = ob.claim(1)
    assert again[0].attempts == 2 and not again[0].historical
    assert ob.claim(1, after_seq=seqs[4], historical=True)[0].historical
    assert ob.ack([*ids[:3], "agent1-1-999"]) == 3
    st = ob.stats()
    assert st.depth == 3 and st.bytes == sum(len(rec().payload) + len(rec().topic) + ROW_OVERHEAD_BYTES
                                             for _ in range(3))


def test_dead_letter_kept_and_counted(make_outbox: Make) -> None:
    """A refused row leaves the queue for the dead-letter table, is counted and is never claimed again."""
    ob = make_outbox()
    bad, good = ob.put_many([rec(topic="t/denied"), rec()])
    assert ob.dead_letter(bad, "PUBACK reason code 0x87")
    assert [r.msg_id for r in ob.claim(10)] == [good]
    st = ob.stats()
    assert st.dead_letters == 1 and st.depth == 1
    assert ob.dead_letters() == [(bad, "t/denied", "PUBACK reason code 0x87")]
    assert not ob.dead_letter(bad, "again")


def test_station_ack_mark_confirm_requeue(make_outbox: Make) -> None:
    """Sent rows stay until confirmed; requeue makes them claimable again; confirm deletes up to the seq."""
    ob = make_outbox()
    ids = ob.put_many([rec() for _ in range(4)])
    ob.mark_sent(ids)
    assert ob.claim(10) == [] and ob.stats().unconfirmed == 4
    assert ob.confirm(Outbox.seq_of(ids[1])) == 2
    assert ob.requeue_sent(upto_seq=Outbox.seq_of(ids[2])) == 1
    assert [r.msg_id for r in ob.claim(10)] == ids[2:3]
    assert ob.requeue_sent() == 1
    assert [r.msg_id for r in ob.claim(10)] == ids[2:]


def test_evict_order_health_first_events_last(make_outbox: Make) -> None:
    """When full, classes go in order health → snapshot → event update → command response → event."""
    ob = make_outbox(max_rows=20)
    order = [Priority.EVENT, Priority.COMMAND_RESPONSE, Priority.EVENT_UPDATE, Priority.SNAPSHOT, Priority.HEALTH]
    for p in order:
        ob.put_many([rec(p) for _ in range(4)])
    ob.put_many([rec(Priority.EVENT) for _ in range(4)])  # 4 evictions; the gap row is the one row over the cap
    st = ob.stats()
    assert st.evicted_by_class == {"health": 4} and st.depth == 21
    ob.put_many([rec(Priority.EVENT) for _ in range(8)])
    st = ob.stats()
    assert st.evicted_by_class == {"health": 4, "snapshot": 4, "event_update": 4, "command_response": 1}
    assert st.depth == 20
    left = {r.priority for r in ob.claim(100)}
    assert Priority.HEALTH not in left and Priority.SNAPSHOT not in left and Priority.EVENT in left


def test_evict_queues_one_merged_gap_record(make_outbox: Make) -> None:
    """Evictions produce one gap row (merged while unclaimed) saying what and how much was dropped."""
    ob = make_outbox(max_rows=10)
    first = ob.put_many([rec(Priority.HEALTH) for _ in range(5)] + [rec(Priority.EVENT) for _ in range(5)])
    ob.put(rec(Priority.EVENT))
    ob.put(rec(Priority.EVENT))
    gaps = [r for r in ob.claim(100) if r.priority == Priority.GAP]
    assert len(gaps) == 1
    gap = json.loads(gaps[0].payload)
    assert gap["reason"] == "outbox_full" and gap["dropped"] == {"health": gap["rows"]} and gap["rows"] >= 2
    assert gap["first_seq"] == Outbox.seq_of(first[0]) and gap["bytes"] > 0
    ob.put(rec(Priority.EVENT))  # the first gap row was claimed: a new one is started
    assert len([r for r in ob.claim(100) if r.priority == Priority.GAP]) == 2


def test_evict_file_never_exceeds_cap(make_outbox: Make, tmp_path: Path) -> None:
    """Under a byte cap the database file stays within cap + one row, whatever the mix of sizes."""
    cap = 256 * 1024
    ob = make_outbox(max_bytes=cap, max_rows=1_000_000)
    biggest = 0
    for i in range(400):
        prio = Priority(i % 5)
        size = 12_000 if prio == Priority.SNAPSHOT else 300
        biggest = max(biggest, size + ROW_OVERHEAD_BYTES)
        ob.put(rec(prio, size=size))
        assert ob.file_bytes() <= cap + biggest, f"file {ob.file_bytes()} > cap {cap} after {i} puts"
        assert ob.stats().bytes <= cap
    st = ob.stats()
    assert st.evicted_rows > 0 and st.evicted_by_class.get("health", 0) > 0


def test_put_refuses_message_larger_than_cap(make_outbox: Make) -> None:
    """A message that could never fit is refused with a clear error instead of emptying the outbox."""
    ob = make_outbox(max_bytes=256 * 1024)
    with pytest.raises(ValueError, match="cannot fit"):
        ob.put(rec(Priority.SNAPSHOT, size=120_000))


def test_record_validation() -> None:
    """Records without a topic or with an invalid QoS are refused at once."""
    with pytest.raises(ValueError):
        Record("", b"{}", Priority.EVENT)
    with pytest.raises(ValueError):
        Record("t", b"{}", Priority.EVENT, qos=3)


def test_put_threads_share_one_outbox(make_outbox: Make) -> None:
    """Eight threads putting at once get distinct seqs and every row is stored."""
    ob = make_outbox()
    got: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        ids = [ob.put(rec()) for _ in range(25)]
        with lock:
            got.extend(ids)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(set(got)) == 200 and ob.stats().depth == 200


def test_listeners_called_after_put(make_outbox: Make) -> None:
    """In-process listeners (the relay's wake-up) run after each committed put."""
    ob = make_outbox()
    calls: list[int] = []
    ob.listeners.append(lambda: calls.append(ob.stats().depth))
    ob.put(rec())
    ob.put_many([rec(), rec()])
    assert calls == [1, 3]


def test_changed_sees_other_connections(make_outbox: Make) -> None:
    """changed() notices commits made by another connection (another process's outbox instance)."""
    owner = make_outbox()
    writer = make_outbox(owner=False)
    assert not owner.changed()
    writer.put(rec())
    assert owner.changed() and not owner.changed()
    assert writer.boot == owner.boot
