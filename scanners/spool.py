"""On-disk store-and-forward spool of upload batches (SQLite, WAL).

Batches, not single readings, are stored: a batch keeps its id across restarts, so a resend after
a lost `202` carries the same id and the server does not count it twice.

A backlog (after an outage, or behind a slow server) goes up as uploads of several batches of one
kind each, so a gateway catches up in a few requests instead of one request per second of backlog.
An upload's id and members are written to the spool before it is first sent and never change
after that (only eviction can shrink it), so its resends are recognised as well.

Durability: WAL with `synchronous=FULL` fsyncs the log at every commit, so a batch that `put`
returned is on stable storage and survives power loss, not only a process crash (`NORMAL` in WAL
mode may lose the last commits on power loss). A commit happens once per batch (about once a
second), a cost even SD cards absorb; environmental readings are compliance records, so the
stronger guarantee is worth it.
"""

import json
import logging
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger(__name__)

KINDS = ("rssi", "environment")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    created REAL NOT NULL,
    readings INTEGER NOT NULL,
    size INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL,
    upload_id TEXT
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


class SpoolFull(OSError):
    """The disk under the spool is full and nothing more may be evicted for a new batch."""


def _disk_full(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in str(exc)


@dataclass(frozen=True)
class SpooledBatch:
    seq: int
    batch_id: str
    kind: str
    created: float
    readings: list[dict]
    attempts: int

    @property
    def count(self) -> int:
        return len(self.readings)


@dataclass(frozen=True)
class Upload:
    """What one request sends: one spooled batch under its own id, or several under a new one."""

    upload_id: str
    kind: str
    readings: list[dict]
    seqs: tuple[int, ...]
    attempts: int

    @property
    def count(self) -> int:
        return len(self.readings)

    @property
    def merged(self) -> bool:
        return len(self.seqs) > 1


class _Member(NamedTuple):
    seq: int
    batch_id: str
    kind: str
    attempts: int
    readings: int
    size: int
    upload_id: str | None
    body: str


@dataclass(frozen=True)
class SpoolDepth:
    batches: int
    readings: int
    bytes: int


class Spool:
    """Bounded FIFO of batches. When full, the oldest RSSI batches go first, then the oldest
    environmental ones: a stale position is worth less than a cold-chain compliance record."""

    def __init__(self, path: str | Path, max_bytes: int = 64 * 1024 * 1024):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = self._open()
        self._bytes = self._conn.execute("SELECT COALESCE(SUM(size), 0) FROM batches").fetchone()[0]

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            conn.close()
            quarantine = self.path.with_suffix(f".corrupt-{int(time.time())}")
            log.critical("spool %s failed its check (%s); moved aside", self.path, verdict)
            self.path.rename(quarantine)
            for suffix in ("-wal", "-shm"):
                sidecar = Path(f"{self.path}{suffix}")
                if sidecar.exists():
                    sidecar.rename(Path(f"{quarantine}{suffix}"))
            return self._open()
        conn.executescript(_SCHEMA)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(batches)")}
        if "upload_id" not in columns:
            conn.execute("ALTER TABLE batches ADD COLUMN upload_id TEXT")
        conn.execute(
            "CREATE INDEX IF NOT EXISTS batches_by_upload ON batches (upload_id)"
            " WHERE upload_id IS NOT NULL"
        )
        return conn

    def put(self, kind: str, readings: list[dict], batch_id: str | None = None) -> str:
        """Store a batch durably; returns its id. May evict old batches to stay under max_bytes.

        max_bytes must stay below the free space of the spool's disk. If the disk fills first
        (a small SD card shared with logs), SQLite cannot even log a delete, so the batch is
        refused with SpoolFull: the agent counts and drops it, and keeps uploading what it has."""
        if kind not in KINDS:
            raise ValueError(f"unknown batch kind {kind!r}")
        batch_id = batch_id or uuid.uuid4().hex
        body = json.dumps(readings, separators=(",", ":"))
        size = len(body)
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    "INSERT INTO batches (batch_id, kind, created, readings, size, body)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (batch_id, kind, time.time(), len(readings), size, body),
                )
                total = self._bytes + size
                total -= self._evict_locked(total)
                conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                self._rollback_locked()
                if _disk_full(exc):
                    raise SpoolFull(f"spool disk is full ({exc})") from exc
                raise
            except BaseException:
                self._rollback_locked()
                raise
            self._bytes = total
        return batch_id

    def _rollback_locked(self) -> None:
        """SQLite rolls back by itself on some errors (SQLITE_FULL); a second ROLLBACK would
        raise and hide the real error."""
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def _evict_locked(self, total: int) -> int:
        freed = 0
        while total - freed > self.max_bytes:
            row = self._conn.execute(
                "SELECT seq, kind, readings, size FROM batches"
                " ORDER BY kind = 'environment', seq LIMIT 1"
            ).fetchone()
            if row is None:
                break
            seq, kind, readings, size = row
            if total - freed - size <= 0:
                break
            self._conn.execute("DELETE FROM batches WHERE seq = ?", (seq,))
            self._bump_locked(f"evicted_readings_{kind}", readings)
            self._bump_locked("evicted_batches", 1)
            log.warning("spool full: evicted oldest %s batch of %d readings", kind, readings)
            freed += size
        return freed

    def peek(self, limit: int = 1) -> list[SpooledBatch]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, batch_id, kind, created, body, attempts FROM batches"
                " ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            SpooledBatch(seq, batch_id, kind, created, json.loads(body), attempts)
            for seq, batch_id, kind, created, body, attempts in rows
        ]

    def next_upload(self, max_readings: int, max_bytes: int) -> Upload | None:
        """The oldest batch, with the never-sent batches of its kind behind it up to the limits.

        A batch already sent alone is resent alone, and an upload already formed is resent whole,
        under the same id: the server may have stored it and only the answer been lost."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                members = self._upload_members_locked(max_readings, max_bytes)
                if not members:
                    conn.execute("COMMIT")
                    return None
                head = members[0]
                if head.upload_id is not None:
                    upload_id = head.upload_id
                elif len(members) == 1:
                    upload_id = head.batch_id
                else:
                    upload_id = uuid.uuid4().hex
                    conn.executemany(
                        "UPDATE batches SET upload_id = ? WHERE seq = ?",
                        [(upload_id, member.seq) for member in members],
                    )
                conn.execute("COMMIT")
            except BaseException:
                self._rollback_locked()
                raise
        return Upload(
            upload_id=upload_id,
            kind=head.kind,
            readings=[reading for member in members for reading in json.loads(member.body)],
            seqs=tuple(member.seq for member in members),
            attempts=max(member.attempts for member in members),
        )

    def _upload_members_locked(self, max_readings: int, max_bytes: int) -> list[_Member]:
        columns = "SELECT seq, batch_id, kind, attempts, readings, size, upload_id, body"
        columns += " FROM batches"
        head = self._conn.execute(columns + " ORDER BY seq LIMIT 1").fetchone()
        if head is None:
            return []
        head = _Member(*head)
        if head.upload_id is not None:
            rows = self._conn.execute(
                columns + " WHERE upload_id = ? ORDER BY seq", (head.upload_id,)
            ).fetchall()
            return [_Member(*row) for row in rows]
        if head.attempts > 0:
            return [head]
        members = [head]
        readings, size = head.readings, head.size
        for row in self._conn.execute(
            columns + " WHERE kind = ? AND seq > ? ORDER BY seq", (head.kind, head.seq)
        ):
            member = _Member(*row)
            if member.attempts > 0 or member.upload_id is not None:
                break
            if readings + member.readings > max_readings or size + member.size > max_bytes:
                break
            members.append(member)
            readings += member.readings
            size += member.size
        return members

    def dissolve(self, upload: Upload) -> None:
        """Send an upload's batches one by one from now on, each under its own id (it was refused
        whole, so the server stored none of it)."""
        with self._lock:
            self._conn.execute(
                "UPDATE batches SET upload_id = NULL WHERE upload_id = ?", (upload.upload_id,)
            )

    def mark_attempt(self, *seqs: int) -> None:
        with self._lock:
            self._conn.executemany(
                "UPDATE batches SET attempts = attempts + 1 WHERE seq = ?", [(seq,) for seq in seqs]
            )

    def remove(self, *seqs: int, counter: str | None = None) -> None:
        """Delete batches once the server took them (or refused them for good, counted in
        `counter`), in one transaction."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            freed = 0
            try:
                for seq in seqs:
                    row = conn.execute(
                        "SELECT readings, size FROM batches WHERE seq = ?", (seq,)
                    ).fetchone()
                    if row is None:
                        continue
                    conn.execute("DELETE FROM batches WHERE seq = ?", (seq,))
                    if counter:
                        self._bump_locked(counter, row[0])
                    freed += row[1]
                conn.execute("COMMIT")
            except BaseException:
                self._rollback_locked()
                raise
            self._bytes -= freed

    def bump(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._bump_locked(name, amount)

    def _bump_locked(self, name: str, amount: int) -> None:
        self._conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, amount),
        )

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._conn.execute("SELECT name, value FROM counters").fetchall())

    def depth(self) -> SpoolDepth:
        with self._lock:
            batches, readings = self._conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(readings), 0) FROM batches"
            ).fetchone()
            return SpoolDepth(batches, readings, self._bytes)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
