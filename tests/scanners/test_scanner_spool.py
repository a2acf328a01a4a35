"""Spool durability: restarts, SIGKILL in the middle of writes, bounded size."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from scanners.spool import Spool

HERE = Path(__file__).parent
REPO = HERE.parent.parent


def readings(n: int, tag: str = "mac:AA:BB:CC:DD:EE:FF") -> list[dict]:
    return [{"tag": tag, "rssi": -60 - i % 30, "ts": "2026-11-24T08:00:00.123Z"} for i in range(n)]


def test_batches_survive_reopen_in_order_with_their_ids(tmp_path):
    path = tmp_path / "spool.sqlite3"
    spool = Spool(path)
    first = spool.put("rssi", readings(3))
    second = spool.put("environment", [{"sensor": "s", "ts": "t", "temperature_c": 4.0}])
    spool.close()
    reopened = Spool(path)
    assert [b.batch_id for b in reopened.peek(10)] == [first, second]
    assert reopened.depth().readings == 4
    assert reopened.peek(1)[0].readings == readings(3)
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_remove_and_counters_persist(tmp_path):
    spool = Spool(tmp_path / "s.sqlite3")
    spool.put("rssi", readings(5))
    (batch,) = spool.peek(1)
    spool.remove(batch.seq, counter="poison_readings")
    spool.bump("uploaded_readings", 7)
    spool.close()
    reopened = Spool(tmp_path / "s.sqlite3")
    assert reopened.depth().batches == 0
    assert reopened.depth().bytes == 0
    assert reopened.counters() == {"poison_readings": 5, "uploaded_readings": 7}


def test_an_upload_keeps_its_id_and_members_across_a_restart(tmp_path):
    path = tmp_path / "s.sqlite3"
    spool = Spool(path)
    spool.put("rssi", readings(2))
    spool.put("rssi", readings(3))
    formed = spool.next_upload(max_readings=100, max_bytes=100_000)
    spool.mark_attempt(*formed.seqs)
    spool.close()
    reopened = Spool(path)
    reopened.put("rssi", readings(1))
    again = reopened.next_upload(max_readings=100, max_bytes=100_000)
    assert (again.upload_id, again.seqs, again.count) == (formed.upload_id, formed.seqs, 5)
    assert again.attempts == 1
    reopened.remove(*again.seqs)
    assert reopened.depth().readings == 1


def test_a_spool_written_before_uploads_were_merged_opens_and_drains(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE batches (seq INTEGER PRIMARY KEY AUTOINCREMENT, batch_id TEXT NOT NULL"
        " UNIQUE, kind TEXT NOT NULL, created REAL NOT NULL, readings INTEGER NOT NULL, size"
        " INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, body TEXT NOT NULL);"
        "INSERT INTO batches (batch_id, kind, created, readings, size, attempts, body) VALUES"
        " ('sent-once', 'rssi', 0, 1, 2, 1, '[{}]'), ('never-sent', 'rssi', 0, 1, 2, 0, '[{}]');"
    )
    old.commit()
    old.close()
    spool = Spool(path)
    upload = spool.next_upload(max_readings=100, max_bytes=100_000)
    assert (upload.upload_id, upload.count) == ("sent-once", 1)


def test_bounded_size_evicts_oldest_rssi_first_and_counts(tmp_path):
    spool = Spool(tmp_path / "s.sqlite3", max_bytes=64 * 1024)
    environment_id = spool.put("environment", [{"sensor": "f", "ts": "t", "temperature_c": 4}])
    ids = [spool.put("rssi", readings(40, tag=f"mac:AA:BB:CC:DD:EE:{i:02X}")) for i in range(40)]
    depth = spool.depth()
    assert depth.bytes <= 64 * 1024
    kept = [b.batch_id for b in spool.peek(100)]
    assert kept[0] == environment_id
    assert kept[1:] == ids[-(len(kept) - 1) :]
    counters = spool.counters()
    evicted = 40 - (len(kept) - 1)
    assert evicted > 0
    assert counters["evicted_batches"] == evicted
    assert counters["evicted_readings_rssi"] == evicted * 40
    assert "evicted_readings_environment" not in counters


def test_hours_of_outage_stay_within_bounds(tmp_path):
    """Four hours of one batch every 5 s at 100 readings each, into a 1 MiB spool."""
    spool = Spool(tmp_path / "s.sqlite3", max_bytes=1024 * 1024)
    batches = 4 * 3600 // 5
    for _ in range(batches):
        spool.put("rssi", readings(100))
    depth = spool.depth()
    assert depth.bytes <= 1024 * 1024
    assert spool.counters()["evicted_readings_rssi"] + depth.readings == batches * 100
    assert os.path.getsize(tmp_path / "s.sqlite3") < 4 * 1024 * 1024


def test_sigkill_mid_write_loses_no_committed_batch(tmp_path):
    path = tmp_path / "spool.sqlite3"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen(
        [sys.executable, str(HERE / "spool_writer_child.py"), str(path)],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    committed = []
    deadline = time.monotonic() + 60
    try:
        while len(committed) < 200 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            committed.append(line.strip())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert len(committed) == 200

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    spool = Spool(path)
    stored = [b.batch_id for b in spool.peek(100_000)]
    assert set(committed) <= set(stored)
    # Batches are contiguous: nothing committed is missing in the middle.
    assert stored == [f"batch-{i}" for i in range(len(stored))]
    assert all(b.count == 50 for b in spool.peek(100_000))
    spool.put("rssi", readings(1))
    assert spool.depth().batches == len(stored) + 1
