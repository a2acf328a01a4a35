"""Fault injection during ingestion, against the real stack on this machine (docs/reliability.md).

    python -m bench.faults                     # every fault, 20 s of load around each
    python -m bench.faults --only worker       # one fault: worker, redis, postgres or spool
    python -m bench.faults --phase 30          # seconds of load after each fault

What it does: a fresh PostgreSQL database `wardwise_faults` and Redis database 6, a small
generated hospital with tagged assets and monitored fridges, each with its own device token
(bench.coldchain's `prepare`); the ASGI server and two Celery workers (bench.load's `Stack`), kept
running by a supervisor in this script that restarts any process that exits, as systemd's
`Restart=always` would. Simulated gateways post RSSI batches and sensors post temperature
readings twice a second, and keep every reading that was not answered 2xx to send again (with
the same batch id), as the scanner agent's spool does. During that load, in turn:

- worker: `kill -9` of one Celery worker mid-stream (the supervisor restarts it);
- redis: `redis-cli shutdown nosave`, then Debian's start command again (docs/deployment.md);
  Redis keeps nothing on disk here, so the raw-RSSI streams not yet processed are lost by design;
- postgres: `pg_ctlcluster --skip-systemctl-redirect 15 main restart`;
- spool: the scanner agent's spool on a 512 KiB tmpfs (or, where mounting is not allowed, with
  a size cap), filled while the server is unreachable.

For each: readings sent, acknowledged (2xx), processed (RSSI: the workers' counter; temperatures:
rows in PostgreSQL) and lost, the time until ingestion and processing work again, and how many
times the supervisor had to restart something (no process needs a manual restart).

Redis and PostgreSQL on this machine are shared with other test runs: the restarts disturb them
for a few seconds, so this is a script, not a CI test, and it always starts both services again.
Only 127.0.0.1 is contacted. Results: bench/results/faults.json and faults.md.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from bench import coldchain, load

RESULTS = load.RESULTS_DIR
FAULTS = ("worker", "redis", "postgres", "spool")
REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
    "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
    "--logfile", "/var/log/redis/ci.log",
]  # fmt: skip
PG_RESTART = ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "restart"]
TAGS_PER_BATCH = 4
LEASE_WAIT_S = 90.0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=FAULTS, action="append", help="faults to inject")
    parser.add_argument("--phase", type=float, default=20.0, help="s of load after each fault")
    parser.add_argument("--scanners", type=int, default=8)
    parser.add_argument("--sensors", type=int, default=20)
    args = parser.parse_args(argv)
    # What bench.load / bench.coldchain's prepare and Stack read.
    args.bench_db, args.redis_db = "wardwise_faults", 6
    args.floors, args.rooms_per_side, args.tags = 1, 6, 60
    args.interval, args.alarm_delay_s, args.relay = 10.0, 20.0, False
    args.server, args.web_procs, args.workers, args.env = "uvicorn", 1, 2, []
    args.http_threads = 4  # read only by the gunicorn and granian layouts
    return args


class Supervisor(threading.Thread):
    """Restarts any stack process that exits, like systemd's Restart=always, and counts it."""

    def __init__(self, stack: load.Stack, commands: dict[str, list[str]]):
        super().__init__(daemon=True)
        self.stack, self.commands = stack, commands
        self.restarts: dict[str, int] = {}
        self.exits: list[dict] = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.2):
            for name, process in list(self.stack.processes.items()):
                if process.poll() is not None and name in self.commands:
                    count = self.restarts[name] = self.restarts.get(name, 0) + 1
                    log = self.stack.workdir / f"{name}.log"
                    kept = log.with_name(f"{name}.exit-{count}.log")
                    log.rename(kept)
                    self.exits.append(
                        {"process": name, "returncode": process.returncode, "log": str(kept)}
                    )
                    self.stack.spawn(name, self.commands[name])


class Sender(threading.Thread):
    """One kind of device traffic: new readings every 0.5 s, each kept until answered 2xx."""

    def __init__(self, kind: str, devices: list[tuple[str, str]], base_url: str):
        super().__init__(daemon=True)
        self.kind, self.devices, self.base_url = kind, devices, base_url
        self.pending: list[tuple[str, str, dict]] = []  # (token, batch id, body)
        self.sent = self.acked = 0
        self.acked_keys: set[tuple[str, float]] = set()
        self.ack_times: list[float] = []
        self.stop = threading.Event()
        self.generate = threading.Event()
        self.generate.set()

    def new_batches(self, now: float):
        for index, (serial, token) in enumerate(self.devices):
            if self.kind == "rssi":
                readings = [
                    {"tag": tag, "rssi": -55 - index, "ts": round(now, 3)}
                    for tag in self.tags[index % len(self.tags)]
                ]
                path = "/api/v1/readings/rssi/"
            else:
                readings = [{"sensor": serial, "ts": round(now, 3), "temperature_c": 5.0}]
                path = "/api/v1/readings/environment/"
            self.sent += len(readings)
            self.pending.append((token, path, {"batch": uuid.uuid4().hex, "readings": readings}))

    def post(self, token: str, path: str, body: dict) -> int | None:
        request = urllib.request.Request(  # noqa: S310  (http://127.0.0.1 only)
            self.base_url + path,
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310  # nosec B310
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (urllib.error.URLError, OSError):
            return None

    def run(self):
        while not self.stop.is_set():
            started = time.time()
            if self.generate.is_set():
                self.new_batches(started)
            keep = []
            for token, path, body in self.pending:
                status = self.post(token, path, body)
                if status is not None and 200 <= status < 300:
                    self.acked += len(body["readings"])
                    self.ack_times.append(time.time())
                    for r in body["readings"]:
                        self.acked_keys.add((r.get("sensor") or r["tag"], r["ts"]))
                else:
                    keep.append((token, path, body))
            self.pending = keep
            self.stop.wait(max(0.0, 0.5 - (time.time() - started)))


class Counters(threading.Thread):
    """The workers' processed and dropped counters, summed across Redis restarts (the counters
    live in Redis too, so a restart sets them back to zero)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.offset: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.changes: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def read(self) -> dict[str, float]:
        from hospital import observability

        counters, _ = observability.read_shared()
        return load.counter_totals(counters)

    def total(self, name: str) -> float:
        return self.offset.get(name, 0.0) + self.last.get(name, 0.0)

    def run(self):
        while not self.stop.wait(0.25):
            with contextlib.suppress(Exception):
                now = self.read()
                for name, value in now.items():
                    if value < self.last.get(name, 0.0):
                        self.offset[name] = self.offset.get(name, 0.0) + self.last[name]
                    if name == "readings_processed_total" and value != self.last.get(name):
                        self.changes.append((time.time(), self.total(name)))
                    self.last[name] = value


def ingestion_outage(sender: Sender, since: float, settle_s: float = 10.0) -> dict:
    """The longest pause between two acknowledgements around the fault, and when acks flowed
    again after it (seconds after the fault began). Requests are answered every 0.5 s or so
    when all is well."""
    time.sleep(settle_s)
    times = [t for t in sender.ack_times if since - 1.0 <= t <= since + settle_s]
    if len(times) < 2:
        return {"longest_gap_s": None, "back_after_s": None}
    gap, end = max((b - a, b) for a, b in itertools.pairwise(times))
    return {"longest_gap_s": round(gap, 2), "back_after_s": round(end - since, 2)}


def processing_resumed(counters: Counters, since: float, timeout: float = 60.0) -> float | None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        later = [t for t, _ in counters.changes if t > since]
        if later:
            return later[0] - since
        time.sleep(0.1)
    return None


def stream_heads() -> dict[int, tuple[int, int]]:
    """The newest entry id of every shard's RSSI stream now."""
    from tracking import bus

    client = bus.client()
    heads = {}
    for shard in range(bus.shard_count()):
        newest = client.xrevrange(bus.STREAM_KEY.format(shard), count=1)
        if newest:
            heads[shard] = _entry_id(newest[0][0])
    return heads


def _entry_id(raw) -> tuple[int, int]:
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def caught_up_after(since: float, heads: dict, limit_s: float = LEASE_WAIT_S) -> float | None:
    """Seconds from `since` until every shard's cursor has passed the stream entries that were
    there at `since` (everything acknowledged before then is applied), or None within
    `limit_s`. A shard whose worker was killed waits for its lease (tracking.bus.ShardLock,
    60 s) to expire before another worker takes it over."""
    from tracking import bus

    deadline = since + limit_s
    while time.time() < deadline:
        with contextlib.suppress(Exception):
            client = bus.client()
            behind = [
                shard
                for shard, head in heads.items()
                if _entry_id(client.get(f"ww:cursor:{shard}") or b"0-0") < head
            ]
            if not behind:
                return round(time.time() - since, 1)
        time.sleep(0.5)
    return None


def inject(fault: str, stack: load.Stack) -> dict:
    if fault == "worker":
        victim = stack.processes["worker-1"]
        os.killpg(victim.pid, signal.SIGKILL)
        return {"action": f"kill -9 worker-1 (pid {victim.pid})"}
    if fault == "redis":
        subprocess.run(["redis-cli", "shutdown", "nosave"], check=False, capture_output=True)  # nosec B603 B607
        time.sleep(2.0)
        subprocess.run(REDIS_START, check=True)  # nosec B603 B607
        return {"action": "redis-cli shutdown nosave; 2 s down; redis-server started again"}
    if fault == "postgres":
        subprocess.run(PG_RESTART, check=True)  # nosec B603 B607
        return {"action": " ".join(PG_RESTART)}
    raise ValueError(fault)


def stored_environment(keys: set, database: str) -> int:
    """How many acknowledged readings are in PostgreSQL, on a fresh connection (this process's
    pooled ones died with the PostgreSQL restart)."""
    import psycopg

    with psycopg.connect(f"{load.PG_SERVER}/{database}") as connection:
        rows = connection.execute(
            "SELECT s.serial, extract(epoch FROM r.ts) FROM environment_environmentreading r"
            " JOIN environment_sensor s ON s.id = r.sensor_id"
        ).fetchall()
    stored = {(serial, round(float(epoch), 3)) for serial, epoch in rows}
    return sum(1 for key in keys if key in stored)


def spool_fault() -> dict:
    """The agent's spool filling up: on a 512 KiB tmpfs when mounting is allowed (the disk
    fills first), else under its own size cap. Environmental batches are one in five."""
    from scanners.spool import Spool, SpoolFull

    readings = [{"tag": "ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:9:1", "rssi": -60}] * 50
    with tempfile.TemporaryDirectory() as workdir:
        mounted = (
            subprocess.run(  # nosec B603 B607
                ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", workdir],
                capture_output=True,
                check=False,
            ).returncode
            == 0
        )
        try:
            spool = Spool(
                Path(workdir) / "spool.db", max_bytes=64 * 1024 * 1024 if mounted else 60_000
            )
            sent = {"rssi": 0, "environment": 0}
            refused = {"rssi": 0, "environment": 0}
            crashed = None
            for index in range(400):
                kind = "environment" if index % 5 == 0 else "rssi"
                sent[kind] += len(readings)
                try:
                    spool.put(kind, readings)
                except SpoolFull:
                    refused[kind] += len(readings)
                except Exception as exc:  # the agent would stop here
                    crashed = repr(exc)
                    break
            counters = spool.counters()
            depth = spool.depth()
            spool.close()
        finally:
            if mounted:
                subprocess.run(["umount", workdir], check=False)  # nosec B603 B607
    return {
        "medium": "512 KiB tmpfs (disk full)" if mounted else "size cap 60 kB",
        "sent": sent,
        "spooled_readings": depth.readings,
        "evicted_readings": {
            k: counters.get(f"evicted_readings_{k}", 0) for k in ("rssi", "environment")
        },
        "refused_disk_full": refused,
        "crashed": crashed,
    }


def run(args) -> dict:
    os.environ.update(load.stack_env(args))
    prepared = coldchain.prepare(args)
    workdir = Path(tempfile.mkdtemp(prefix="wardwise-faults-"))
    stack = load.Stack(args, workdir)
    stack.start()
    commands = {name: list(p.args) for name, p in stack.processes.items()}
    supervisor = Supervisor(stack, commands)
    report: dict = {"faults": {}}
    base_url = f"http://127.0.0.1:{load.PORT}"
    try:
        from tracking import bus

        stack.wait_ready(bus.client())
        supervisor.start()
        tag_ids = _tags()
        rssi = Sender("rssi", prepared["scanners"][: args.scanners], base_url)
        rssi.tags = [tag_ids[i :: args.scanners][:TAGS_PER_BATCH] for i in range(args.scanners)]
        env = Sender("environment", prepared["sensors"], base_url)
        counters = Counters()
        for thread in (rssi, env, counters):
            thread.start()
        time.sleep(args.phase)
        for fault in args.only or FAULTS:
            if fault == "spool":
                report["faults"]["spool"] = spool_fault()
                continue
            before = {
                "rssi_sent": rssi.sent, "rssi_acked": rssi.acked, "env_sent": env.sent,
                "env_acked": env.acked,
                "processed": counters.total("readings_processed_total"),
            }  # fmt: skip
            restarts_before = dict(supervisor.restarts)
            heads = stream_heads()
            at = time.time()
            action = inject(fault, stack)
            resumed = processing_resumed(counters, time.time())
            env_back = ingestion_outage(env, at)
            rssi_back = ingestion_outage(rssi, at)
            time.sleep(args.phase)
            # After a Redis restart the streams are new: what was in them is gone (counted
            # as lost below), so only the new entries are waited for.
            caught_up = caught_up_after(at, stream_heads() if fault == "redis" else heads)
            restarts = {
                k: v - restarts_before.get(k, 0)
                for k, v in supervisor.restarts.items()
                if v - restarts_before.get(k, 0)
            }
            report["faults"][fault] = {
                **action,
                "ingestion": {"environment": env_back, "rssi": rssi_back},
                "processing_resumed_s": resumed,
                "rssi_acknowledged_before_fault_all_applied_after_s": caught_up,
                "supervisor_restarts": restarts,
                "rssi_sent": rssi.sent - before["rssi_sent"],
                "rssi_acked": rssi.acked - before["rssi_acked"],
                "env_sent": env.sent - before["env_sent"],
                "env_acked": env.acked - before["env_acked"],
                "processed_during": counters.total("readings_processed_total")
                - before["processed"],
            }
            save(report)
        rssi.generate.clear()
        env.generate.clear()
        deadline = time.time() + 60
        while (rssi.pending or env.pending) and time.time() < deadline:
            time.sleep(0.5)
        time.sleep(3)  # the late allowance of the last readings
        caught_up_after(time.time(), stream_heads())
        for thread in (rssi, env, counters):
            thread.stop.set()
        processed = counters.total("readings_processed_total")
        dropped = sum(counters.total(n) for n in list(counters.last) if n.startswith("dropped_"))
        stored = stored_environment(env.acked_keys, args.bench_db)
        report["totals"] = {
            "rssi": {
                "sent": rssi.sent,
                "acknowledged": rssi.acked,
                "processed": int(processed),
                "dropped_by_rules": int(dropped),
                "lost": int(rssi.acked - processed - dropped),
                "unacknowledged_at_end": sum(len(b["readings"]) for _, _, b in rssi.pending),
            },
            "environment": {
                "sent": env.sent,
                "acknowledged": env.acked,
                "stored": stored,
                "lost": env.acked - stored,
                "unacknowledged_at_end": sum(len(b["readings"]) for _, _, b in env.pending),
            },
            "supervisor_restarts": supervisor.restarts,
            "process_exits": supervisor.exits,
        }
    finally:
        supervisor.stop.set()
        stack.stop()
        _ensure_services()
    return report


def _tags() -> list[str]:
    from tracking.models import Tag

    return list(Tag.objects.order_by("pk").values_list("tag_id", flat=True))


def _ensure_services() -> None:
    """Whatever happened, leave Redis and PostgreSQL running for everyone else."""
    if subprocess.run(["redis-cli", "ping"], capture_output=True, check=False).returncode:  # nosec B603 B607
        subprocess.run(REDIS_START, check=False)  # nosec B603 B607
    if subprocess.run(
        ["pg_isready", "-h", "127.0.0.1"], capture_output=True, check=False
    ).returncode:  # nosec B603 B607
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "start"], check=False
        )  # nosec B603 B607


def save(report: dict) -> None:
    """Written after every fault too, so a later failure keeps what was measured."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    report["command"] = "python -m bench.faults " + " ".join(sys.argv[1:])
    (RESULTS / "faults.json").write_text(json.dumps(report, indent=2, default=str) + "\n")


def main(argv=None) -> None:
    args = parse_args(argv)
    report = run(args)
    report["machine"] = load.machine()
    save(report)
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
