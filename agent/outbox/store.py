"""The durable outbox: every event, snapshot, command response and health sample is committed here first.

One SQLite file in WAL mode in the state dir. `put`/`put_many` commit with `synchronous=FULL` (the WAL is fsynced
before `put` returns), so a row that `put` returned an id for survives kill -9 and power loss. Bookkeeping that
may be repeated safely after a crash (claim counters, deletes after PUBACK) commits with `synchronous=NORMAL`: the
worst a power cut can do there is make the relay send a row once more, and consumers dedupe by msg_id.

Concurrency: one connection per `Outbox` guarded by a lock, so one instance may be shared by the threads of a
process. Several processes (camera workers) may each open their own instance with `owner=False`: every change is
a single `BEGIN IMMEDIATE` transaction, counters live in the file, and `seq` comes from SQLite's AUTOINCREMENT in
the same transaction, so it is monotonic across processes. Exactly one instance, the relay's, is the `owner`: it
checks integrity at start and bumps the boot counter, and it is the only one that should claim and ack.

Bounds: rows and accounted bytes (payload + topic + a per-row overhead) are capped; SQLite's own
`max_page_count` makes the byte cap a hard limit of the file. When full, rows are evicted lowest class first,
oldest first (see `Priority`), and one pending `gap` row accumulates what was dropped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from agent.outbox import schema
from agent.outbox.types import OutboxStats, Priority, Record, Row

log = logging.getLogger(__name__)

ROW_OVERHEAD_BYTES = 128  # record header, index entry and B-tree slack per row (file size measured in the tests)
BUDGET_FRACTION = 0.75  # accounted bytes stay below 75 % of the cap, leaving the rest to B-tree fragmentation
FIXED_OVERHEAD_BYTES = 64 * 1024  # schema, counters, index roots, dead-letter table: outside the row budget
EVICT_BATCH = 256  # rows looked at per eviction query
FULL_EVICT_FRACTION = 0.02  # when SQLite itself says "full", drop this share of rows (doubling) and retry
FULL_RETRIES = 8
MAX_DEAD_LETTER_ROWS = 10_000  # kept for inspection; the counter keeps counting beyond
SQL_VARS = 500  # parameters per IN (...) list, below SQLite's historic limit of 999

_COLUMNS = "seq, boot, priority, topic, payload, qos, retain, created, attempts, historical, sent, correlation"


class Outbox:
    """Durable, bounded, prioritised store of outgoing MQTT messages. See the module docstring."""

    def __init__(self, path: Path | str, *, agent_id: str, max_bytes: int = 64 * 1024 * 1024,
                 max_rows: int = 500_000, owner: bool = True, clock: Callable[[], float] = time.time) -> None:
        if max_bytes < 2 * FIXED_OVERHEAD_BYTES:
            raise ValueError(f"outbox max_bytes must be at least {2 * FIXED_OVERHEAD_BYTES} bytes, not {max_bytes}")
        if max_rows < 10:
            raise ValueError(f"outbox max_rows must be at least 10, not {max_rows}")
        if not agent_id:
            raise ValueError("outbox needs an agent id (it is the first part of every msg_id)")
        self.path = Path(path)
        self.agent_id = agent_id
        self.max_bytes = max_bytes
        self.max_rows = max_rows
        self._budget = int((max_bytes - FIXED_OVERHEAD_BYTES) * BUDGET_FRACTION)
        self._clock = clock
        self._owner = owner
        self._lock = threading.RLock()
        self._conn, self.boot, self._set_aside = schema.open_checked(self.path, agent_id, max_bytes, owner)
        self._sync = "FULL"
        self._data_version = self._pragma_int("data_version")
        # Called (without arguments, after the commit) on every put in this process; the relay registers here and
        # polls `changed()` for puts from other processes. Listeners must be quick and must not call the outbox.
        self.listeners: list[Callable[[], None]] = []
        if owner:
            schema.write_seq_floor(self.path, self.max_seq())

    # ---- transactions -----------------------------------------------------------------------------------------
    def _pragma_int(self, name: str) -> int:
        return int(self._conn.execute(f"PRAGMA {name}").fetchone()[0])

    @contextlib.contextmanager
    def _tx(self, durable: bool) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction; `durable` selects synchronous=FULL (fsync the WAL on commit)."""
        with self._lock:
            want = "FULL" if durable else "NORMAL"
            if want != self._sync:
                self._conn.execute(f"PRAGMA synchronous={want}")
                self._sync = want
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:  # SQLite rolls back by itself after SQLITE_FULL
                    self._conn.execute("ROLLBACK")
                raise

    def msg_id(self, boot: int, seq: int) -> str:
        return f"{self.agent_id}-{boot}-{seq}"

    @staticmethod
    def seq_of(msg_id: str) -> int:
        return int(msg_id.rsplit("-", 1)[1])

    # ---- producers --------------------------------------------------------------------------------------------
    def put(self, record: Record) -> str:
        """Store one record durably; return its msg_id once the WAL is on disk."""
        return self.put_many([record])[0]

    def put_many(self, records: Sequence[Record]) -> list[str]:
        """Store several records in one durable transaction (one fsync): the batched path for high rates."""
        if not records:
            return []
        sizes = [self._size(r) for r in records]
        if max(sizes) > self._budget // 2:
            raise ValueError(f"a {max(sizes)}-byte message cannot fit an outbox capped at {self.max_bytes} bytes")
        for attempt in range(FULL_RETRIES + 1):
            try:
                with self._tx(durable=True) as c:
                    ids = self._insert(c, records, sizes)
                break
            except sqlite3.OperationalError as e:
                if "full" not in str(e).lower() or attempt == FULL_RETRIES:
                    raise
                self._evict_because_full(FULL_EVICT_FRACTION * 2**attempt)
        for notify in self.listeners:
            notify()
        return ids

    @staticmethod
    def _size(record: Record) -> int:
        return len(record.payload) + len(record.topic.encode()) + len(record.correlation or b"") + ROW_OVERHEAD_BYTES

    def _insert(self, c: sqlite3.Connection, records: Sequence[Record], sizes: list[int]) -> list[str]:
        rows, nbytes = c.execute("SELECT rows, bytes FROM state WHERE id = 1").fetchone()
        over_rows = rows + len(records) - self.max_rows
        over_bytes = nbytes + sum(sizes) - self._budget
        if over_rows > 0 or over_bytes > 0:
            self._evict(c, over_rows, over_bytes)
        now = self._clock()
        ids = []
        for r, size in zip(records, sizes, strict=True):
            cur = c.execute(
                "INSERT INTO outbox (boot, priority, topic, payload, qos, retain, created, size, correlation) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.boot, int(r.priority), r.topic, r.payload, r.qos, int(r.retain), now, size, r.correlation),
            )
            ids.append(self.msg_id(self.boot, int(cur.lastrowid or 0)))
        c.execute("UPDATE state SET rows = rows + ?, bytes = bytes + ? WHERE id = 1", (len(records), sum(sizes)))
        return ids

    # ---- eviction ---------------------------------------------------------------------------------------------
    def _evict(self, c: sqlite3.Connection, need_rows: int, need_bytes: int) -> None:
        """Delete lowest class first, oldest first, until both needs are met; then record a gap."""
        dropped: dict[int, list[int]] = {}  # priority -> [rows, bytes]
        merged_gap: dict[str, object] = {}
        seqs: list[int] = []
        times: list[float] = []
        while need_rows > 0 or need_bytes > 0:
            batch = c.execute(
                "SELECT seq, priority, size, created, payload FROM outbox WHERE priority = "
                "(SELECT MIN(priority) FROM outbox) ORDER BY seq LIMIT ?", (EVICT_BATCH,)).fetchall()
            if not batch:
                break
            victims = []
            for seq, prio, size, created, payload in batch:
                if need_rows <= 0 and need_bytes <= 0:
                    break
                victims.append(seq)
                need_rows -= 1
                need_bytes -= size
                seqs.append(seq)
                times.append(created)
                if prio == Priority.GAP:
                    merged_gap = _merge_gap(merged_gap, json.loads(payload))
                else:
                    acc = dropped.setdefault(prio, [0, 0])
                    acc[0] += 1
                    acc[1] += size
            self._delete(c, victims)
        if not seqs:
            return
        for prio, (n, b) in dropped.items():
            c.execute("INSERT INTO evictions VALUES (?, ?, ?) ON CONFLICT(priority) DO UPDATE SET "
                      "rows = rows + excluded.rows, bytes = bytes + excluded.bytes", (prio, n, b))
        n_dropped = sum(v[0] for v in dropped.values())
        c.execute("UPDATE state SET evicted_rows = evicted_rows + ? WHERE id = 1", (n_dropped,))
        log.warning("outbox full: evicted %d rows (%s)", len(seqs),
                    ", ".join(f"{Priority(p).label}={v[0]}" for p, v in sorted(dropped.items())))
        gap = {
            "reason": "outbox_full",
            "dropped": {Priority(p).label: v[0] for p, v in dropped.items()},
            "rows": n_dropped,
            "bytes": sum(v[1] for v in dropped.values()),
            "first_seq": min(seqs), "last_seq": max(seqs),
            "first_ts": min(times), "last_ts": max(times),
        }
        self._record_gap(c, _merge_gap(merged_gap, gap))

    def _record_gap(self, c: sqlite3.Connection, gap: dict[str, object]) -> None:
        """Merge into the newest gap row the relay has not claimed yet, or add one."""
        row = c.execute("SELECT seq, payload, size FROM outbox WHERE priority = ? AND attempts = 0 "
                        "ORDER BY seq DESC LIMIT 1", (int(Priority.GAP),)).fetchone()
        if row is not None:
            gap = _merge_gap(json.loads(row[1]), gap)
        payload = json.dumps(gap, separators=(",", ":"), sort_keys=True).encode()
        size = len(payload) + ROW_OVERHEAD_BYTES
        if row is not None:
            c.execute("UPDATE outbox SET payload = ?, size = ? WHERE seq = ?", (payload, size, row[0]))
            c.execute("UPDATE state SET bytes = bytes + ? WHERE id = 1", (size - row[2],))
        else:
            c.execute("INSERT INTO outbox (boot, priority, topic, payload, qos, retain, created, size) "
                      "VALUES (?, ?, '', ?, 1, 0, ?, ?)", (self.boot, int(Priority.GAP), payload, self._clock(), size))
            c.execute("UPDATE state SET rows = rows + 1, bytes = bytes + ? WHERE id = 1", (size,))

    def _evict_because_full(self, fraction: float) -> None:
        """SQLite refused a page (the hard cap): fragmentation beat the estimate. Drop a slice and retry.

        Deleting small rows scattered between others frees no whole page, so the slice doubles on each retry
        until pages come free (in practice once the oldest rows of a class go, their pages are contiguous)."""
        with self._tx(durable=True) as c:
            rows = c.execute("SELECT rows FROM state WHERE id = 1").fetchone()[0]
            self._evict(c, max(1, int(rows * min(1.0, fraction))), 0)

    def _delete(self, c: sqlite3.Connection, seqs: Sequence[int], where: str = "") -> int:
        """Delete rows by seq, keeping the counters right. Returns how many rows were deleted."""
        n = b = 0
        for i in range(0, len(seqs), SQL_VARS):
            chunk = seqs[i:i + SQL_VARS]
            marks = ",".join("?" * len(chunk))
            for (size,) in c.execute(f"DELETE FROM outbox WHERE seq IN ({marks}){where} RETURNING size", chunk):
                n += 1
                b += size
        if n:
            c.execute("UPDATE state SET rows = rows - ?, bytes = bytes - ? WHERE id = 1", (n, b))
        return n

    # ---- the relay --------------------------------------------------------------------------------------------
    def claim(self, n: int, *, after_seq: int = 0, upto_seq: int | None = None, historical: bool = False) -> list[Row]:
        """Up to `n` unsent rows with after_seq < seq <= upto_seq, oldest first; counts the attempt.

        The relay keeps the cursor (`after_seq`): rows are never locked, so after a restart or a reconnect it
        simply starts again from 0 and every row not yet acknowledged is sent again. `historical` marks the
        rows as replayed backlog (kept in the row for inspection; the relay stamps it into the payload).
        """
        hi = upto_seq if upto_seq is not None else 2**62
        with self._tx(durable=False) as c:
            got = c.execute(f"SELECT {_COLUMNS} FROM outbox WHERE seq > ? AND seq <= ? AND sent = 0 "
                            "ORDER BY seq LIMIT ?", (after_seq, hi, n)).fetchall()
            if got:
                c.execute("UPDATE outbox SET attempts = attempts + 1, historical = historical | ? "
                          "WHERE seq > ? AND seq <= ? AND sent = 0",
                          (int(historical), after_seq, got[-1][0]))
        return [Row(seq=s, msg_id=self.msg_id(boot, s), topic=t, payload=p, priority=Priority(pr), qos=q,
                    retain=bool(rt), created=cr, attempts=a + 1, historical=bool(h) or historical, sent=bool(sn),
                    correlation=corr)
                for s, boot, pr, t, p, q, rt, cr, a, h, sn, corr in got]

    def ack(self, msg_ids: Iterable[str]) -> int:
        """The broker took these (successful PUBACK): delete them. Unknown ids are ignored (already evicted)."""
        seqs = sorted({self.seq_of(m) for m in msg_ids})
        if not seqs:
            return 0
        with self._tx(durable=False) as c:
            return self._delete(c, seqs)

    def mark_sent(self, msg_ids: Iterable[str]) -> None:
        """Station-ack mode: the broker took these, but keep them until the station confirms their seq."""
        seqs = sorted({self.seq_of(m) for m in msg_ids})
        with self._tx(durable=False) as c:
            for i in range(0, len(seqs), SQL_VARS):
                chunk = seqs[i:i + SQL_VARS]
                c.execute(f"UPDATE outbox SET sent = 1 WHERE seq IN ({','.join('?' * len(chunk))})", chunk)

    def confirm(self, upto_seq: int) -> int:
        """The station stored everything up to `upto_seq`: delete sent rows at or below it."""
        with self._tx(durable=False) as c:
            seqs = [r[0] for r in c.execute("SELECT seq FROM outbox WHERE sent = 1 AND seq <= ?", (upto_seq,))]
            return self._delete(c, seqs)

    def requeue_sent(self, upto_seq: int | None = None) -> int:
        """After the broker may have lost what it took (a crash): make unconfirmed rows sendable again."""
        with self._tx(durable=False) as c:
            return c.execute("UPDATE outbox SET sent = 0 WHERE sent = 1 AND seq <= ?",
                             (2**62 if upto_seq is None else upto_seq,)).rowcount

    def dead_letter(self, msg_id: str, reason: str) -> bool:
        """The broker refused this row (e.g. 0x87 not authorized): move it aside, count it, never resend it."""
        seq = self.seq_of(msg_id)
        with self._tx(durable=True) as c:
            row = c.execute("SELECT priority, topic, payload, created FROM outbox WHERE seq = ?", (seq,)).fetchone()
            if row is None:
                return False
            c.execute("INSERT OR REPLACE INTO dead_letter VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      (seq, msg_id, row[0], row[1], row[2], row[3], self._clock(), reason))
            self._delete(c, [seq])
            c.execute("UPDATE state SET dead_letters = dead_letters + 1 WHERE id = 1")
            c.execute("DELETE FROM dead_letter WHERE seq <= (SELECT seq FROM dead_letter ORDER BY seq DESC "
                      "LIMIT 1 OFFSET ?)", (MAX_DEAD_LETTER_ROWS,))
        log.error("message %s on %s refused by the broker (%s): kept in the dead-letter table", msg_id, row[1], reason)
        return True

    def dead_letters(self, limit: int = 100) -> list[tuple[str, str, str]]:
        """The newest dead letters as (msg_id, topic, reason), for `status` and tests."""
        with self._lock:
            return [tuple(r) for r in self._conn.execute(  # type: ignore[misc]
                "SELECT msg_id, topic, reason FROM dead_letter ORDER BY seq DESC LIMIT ?", (limit,))]

    # ---- observation ------------------------------------------------------------------------------------------
    def max_seq(self) -> int:
        """The highest seq ever handed out by this file (0 if none)."""
        with self._lock:
            row = self._conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        return int(row[0]) if row else 0

    def changed(self) -> bool:
        """True if any connection (another process included) committed since the last call."""
        with self._lock:
            v = self._pragma_int("data_version")
            seen, self._data_version = self._data_version, v
        return v != seen

    def stats(self) -> OutboxStats:
        with self._lock:
            c = self._conn
            rows, nbytes, dead, evicted = c.execute(
                "SELECT rows, bytes, dead_letters, evicted_rows FROM state WHERE id = 1").fetchone()
            oldest = c.execute("SELECT created FROM outbox ORDER BY seq LIMIT 1").fetchone()
            by_class = {Priority(p).label: n for p, n in c.execute("SELECT priority, rows FROM evictions")}
            unconfirmed = c.execute("SELECT count(*) FROM outbox WHERE sent = 1").fetchone()[0]
        return OutboxStats(depth=rows, bytes=nbytes, oldest_age_s=None if oldest is None else
                           max(0.0, self._clock() - oldest[0]), dead_letters=dead, evicted_rows=evicted,
                           evicted_by_class=by_class, unconfirmed=unconfirmed, files_set_aside=self._set_aside)

    def file_bytes(self) -> int:
        """Size of the database file itself (what the cap bounds), without the transient WAL."""
        return self.path.stat().st_size if self.path.exists() else 0

    def close(self) -> None:
        """Close; the owner also folds the WAL back into the file (a worker must not wait on the relay for that)."""
        with self._lock:
            if self._owner:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()


def _merge_gap(a: dict[str, object], b: dict[str, object]) -> dict[str, object]:
    """Combine two gap descriptions (counts add up, the seq/time range widens)."""
    if not a:
        return dict(b)
    if not b:
        return dict(a)
    dropped: dict[str, int] = dict(a.get("dropped", {}))  # type: ignore[arg-type]
    for k, v in dict(b.get("dropped", {})).items():  # type: ignore[call-overload]
        dropped[k] = dropped.get(k, 0) + int(v)
    return {
        "reason": b.get("reason", a.get("reason")),
        "dropped": dropped,
        "rows": int(a.get("rows", 0)) + int(b.get("rows", 0)),  # type: ignore[call-overload]
        "bytes": int(a.get("bytes", 0)) + int(b.get("bytes", 0)),  # type: ignore[call-overload]
        "first_seq": min(a["first_seq"], b["first_seq"]),  # type: ignore[type-var]
        "last_seq": max(a["last_seq"], b["last_seq"]),  # type: ignore[type-var]
        "first_ts": min(a["first_ts"], b["first_ts"]),  # type: ignore[type-var]
        "last_ts": max(a["last_ts"], b["last_ts"]),  # type: ignore[type-var]
    }
