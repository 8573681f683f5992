"""Opening the outbox file: schema, pragmas, integrity check, and setting a corrupt file aside.

A village Pi loses power without warning and its SD card may be worn. SQLite in WAL mode survives a power cut at
any point, but not a card that returns garbage; so at start the owner runs `PRAGMA quick_check`, and a file that
fails it (or is not a database at all, or has a foreign schema) is renamed `<name>.corrupt-<UTC stamp>` together
with its -wal/-shm companions and replaced by an empty one. Events in a corrupt file are lost either way; the agent
keeps running and counts the event in health (`files_set_aside`).

`seq` must keep increasing even across a replacement, because the station may hold a retained acknowledgement
`{"seq": N}` from the old file and would otherwise make us drop new rows as already stored. A new file's sequence
starts above both the current UTC time in microseconds and the last seq recorded in the `<name>.seq` side file.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000  # camera workers and the relay share the file; a checkpoint can hold the lock briefly

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    boot       INTEGER NOT NULL,
    priority   INTEGER NOT NULL,
    topic      TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    qos        INTEGER NOT NULL,
    retain     INTEGER NOT NULL,
    created    REAL    NOT NULL,
    size       INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    historical INTEGER NOT NULL DEFAULT 0,
    sent       INTEGER NOT NULL DEFAULT 0,
    correlation BLOB
);
CREATE INDEX IF NOT EXISTS outbox_evict ON outbox (priority, seq);
CREATE TABLE IF NOT EXISTS dead_letter (
    seq      INTEGER PRIMARY KEY,
    msg_id   TEXT    NOT NULL,
    priority INTEGER NOT NULL,
    topic    TEXT    NOT NULL,
    payload  BLOB    NOT NULL,
    created  REAL    NOT NULL,
    dead_at  REAL    NOT NULL,
    reason   TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    schema       INTEGER NOT NULL,
    agent_id     TEXT    NOT NULL,
    boot         INTEGER NOT NULL,
    rows         INTEGER NOT NULL,
    bytes        INTEGER NOT NULL,
    dead_letters INTEGER NOT NULL,
    evicted_rows INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS evictions (
    priority INTEGER PRIMARY KEY,
    rows     INTEGER NOT NULL,
    bytes    INTEGER NOT NULL
);
"""

EXPECTED_TABLES = {"outbox", "dead_letter", "state", "evictions"}


class OutboxCorrupt(Exception):
    """The file failed the integrity check; `reason` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def connect(path: Path, cap_bytes: int) -> sqlite3.Connection:
    """Open with the pragmas every connection needs. `max_page_count` makes the cap a hard limit of SQLite itself."""
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise OutboxCorrupt(f"cannot switch to WAL mode (got {mode})")
    conn.execute("PRAGMA synchronous=FULL")
    page = int(conn.execute("PRAGMA page_size").fetchone()[0])
    conn.execute(f"PRAGMA max_page_count={max(16, cap_bytes // page)}")
    # Keep the WAL small next to the cap: checkpoint after at most 1000 pages (SQLite's default, 4 MiB) or an
    # eighth of the cap, and truncate it back to that size afterwards.
    wal_pages = max(16, min(1000, cap_bytes // page // 8))
    conn.execute(f"PRAGMA wal_autocheckpoint={wal_pages}")
    conn.execute(f"PRAGMA journal_size_limit={wal_pages * page}")
    return conn


def check(conn: sqlite3.Connection) -> None:
    """Raise OutboxCorrupt unless quick_check passes and the tables are ours (or the file is new and empty)."""
    try:
        rows = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as e:
        raise OutboxCorrupt(str(e)) from e
    if rows != ["ok"]:
        raise OutboxCorrupt("; ".join(str(r) for r in rows[:3]))
    ours = tables - {"sqlite_sequence"}
    if ours and not ours >= EXPECTED_TABLES:
        raise OutboxCorrupt(f"unexpected tables {sorted(ours)}")
    if "state" in ours:
        try:
            version = conn.execute("SELECT schema FROM state WHERE id = 1").fetchone()
        except sqlite3.DatabaseError as e:
            raise OutboxCorrupt(str(e)) from e
        if version is not None and version[0] != SCHEMA_VERSION:
            raise OutboxCorrupt(f"schema version {version[0]}, expected {SCHEMA_VERSION}")


def set_aside(path: Path, reason: str) -> Path:
    """Rename a corrupt file (and its WAL/SHM) with a UTC stamp so a technician can still look at it."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    log.error("outbox %s failed its integrity check (%s); moved aside to %s, starting an empty outbox",
              path, reason, target.name)
    for suffix in ("", "-wal", "-shm"):
        src = path.with_name(path.name + suffix)
        if src.exists():
            src.rename(target.with_name(target.name + suffix))
    return target


def read_seq_floor(path: Path) -> int:
    try:
        return int(path.with_name(path.name + ".seq").read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def write_seq_floor(path: Path, seq: int) -> None:
    """Best effort: the side file only matters if the database itself is later lost."""
    side = path.with_name(path.name + ".seq")
    try:
        tmp = side.with_name(side.name + ".tmp")
        tmp.write_text(f"{seq}\n")
        tmp.replace(side)
    except OSError as e:
        log.warning("cannot write %s (%s); seq continuity after a corrupt outbox is not guaranteed", side, e)


def initialise(conn: sqlite3.Connection, path: Path, agent_id: str, owner: bool) -> int:
    """Create tables if needed; the owner bumps the boot counter. Returns the boot number to stamp rows with."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for stmt in SCHEMA.split(";"):
            if stmt.strip():
                conn.execute(stmt)
        row = conn.execute("SELECT boot, agent_id FROM state WHERE id = 1").fetchone()
        if row is None:
            seed = max(int(time.time() * 1_000_000), read_seq_floor(path) + 1)
            conn.execute("INSERT INTO state VALUES (1, ?, ?, 1, 0, 0, 0, 0)", (SCHEMA_VERSION, agent_id))
            conn.execute("DELETE FROM sqlite_sequence WHERE name = 'outbox'")
            conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', ?)", (seed,))
            boot = 1
        else:
            boot = int(row[0])
            if row[1] != agent_id:
                log.warning("outbox %s belonged to agent %r, now used by %r; keeping its rows", path, row[1], agent_id)
                conn.execute("UPDATE state SET agent_id = ? WHERE id = 1", (agent_id,))
            if owner:
                boot += 1
                conn.execute("UPDATE state SET boot = ? WHERE id = 1", (boot,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return boot


def open_checked(path: Path, agent_id: str, cap_bytes: int, owner: bool) -> tuple[sqlite3.Connection, int, int]:
    """Open (owner: check, set aside if corrupt, recreate). Returns (connection, boot, files set aside)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    set_aside_count = 0
    for _ in range(2):
        conn: sqlite3.Connection | None = None
        try:
            conn = connect(path, cap_bytes)
            if owner:
                check(conn)
            boot = initialise(conn, path, agent_id, owner)
            return conn, boot, set_aside_count
        except (OutboxCorrupt, sqlite3.DatabaseError) as e:
            if conn is not None:
                conn.close()
            if not owner:
                raise
            reason = e.reason if isinstance(e, OutboxCorrupt) else str(e)
            set_aside(path, reason)
            set_aside_count += 1
    raise OutboxCorrupt(f"cannot create a working outbox at {path}")
