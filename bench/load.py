"""End-to-end load benchmark of live tracking, against the real stack on this machine.

    python -m bench.load                      # the issue's two target points, 180 s each
    python -m bench.load --rate 8000          # one point (readings/s); --duration S
    python -m bench.load --find-max           # step the rate up until the stack cannot keep up
    python -m bench.load --quick              # 20 s smoke run at 2,000 readings/s

What it does, every run: drops and creates the PostgreSQL database `wardwise_bench` (trust auth on
127.0.0.1:5432), flushes Redis database 7, migrates, loads a generated hospital (5 floors, 250
scanners, 10,000 tagged assets), issues a device token per scanner and a nurse's session; starts
the servers (by default the shipped layout, docs/deployment.md: gunicorn gthread for the REST
ingestion beside one uvicorn process for the websockets; `--server granian` for the same layout
with granian's WSGI server in gunicorn's place; `--server uvicorn` or `daphne` for everything
through one ASGI server) and N Celery workers as subprocesses, waits until every
worker has built its localization engine, then runs simulated gateways (bench/loadgen.py: one
batch per scanner per second, readings stamped with the send time) and nurses' floor websockets.

Figures, over the measurement window (after a warm-up at the same rate):
- offered / accepted (202) / refused readings/s, from the gateways' own tally and the server's
  `readings_accepted_total` counter; processed readings/s from the workers'
  `readings_processed_total`;
- backlog = accepted - processed - dropped (includes readings held for the late allowance), its
  growth over the window, and the shards' cursor lag (newest stream entry minus the entry the
  shard's cursor points at, in seconds);
- receipt-to-websocket latency: websocket receive time minus the `ts` of the pushed position,
  which is the event time of the newest reading that went into it, i.e. the instant the gateway
  stamped and sent that reading (same clock, loopback);
- the workers' share of it: receipt until a worker applied the reading, and the drains' rate
  and duration, from the histograms the workers export (`reading_wait_seconds`,
  `drain_seconds`; quantiles interpolated within buckets, as Prometheus does);
- CPU% (100 % = one core) and peak RSS of every process group;
- lost = accepted - processed - dropped(late, unknown tag) - still held, after a drain period.

Results go to bench/results/load.json (every label run so far) and load.md. Only 127.0.0.1 is
contacted; every subprocess is killed on exit, error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.loadgen import percentiles, radio_links
from bench.procstat import Group, Sampler

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
#: Database and Redis database of the benchmark (both wiped per run); the environment variables
#: let two benchmarks run side by side. Tests use Redis 10-15.
BENCH_DB = os.environ.get("WARDWISE_BENCH_DB", "wardwise_bench")
PG_SERVER = "postgres://postgres@127.0.0.1:5432"
REDIS_DB = int(os.environ.get("WARDWISE_BENCH_REDIS_DB", "7"))
TARGETS = (10_000, 20_000)
FIND_MAX_RATES = (2_000, 4_000, 6_000, 8_000, 10_000, 12_000, 15_000, 20_000)
LINKS_PER_TAG = 6
SAMPLE_S = 2.0
#: A run is sustained when at least this share of what was offered is accepted and processed.
SUSTAINED_SHARE = 0.98
#: Servers that take the REST ingestion (hospital.device_wsgi) beside one uvicorn process for the
#: websockets, the layout docs/deployment.md ships with gunicorn.
SPLIT_SERVERS = ("gunicorn", "granian")


def add_server_arguments(parser: argparse.ArgumentParser, *, server: str, web_procs: int) -> None:
    """The server layout options `Stack` reads (shared with bench.coldchain)."""
    parser.add_argument(
        "--server",
        choices=("uvicorn", "daphne", *SPLIT_SERVERS),
        default=server,
        help="gunicorn: HTTP through gunicorn, websockets through one uvicorn process "
        "(docs/deployment.md); granian: the same with granian's WSGI server instead of "
        "gunicorn; uvicorn, daphne: everything through the ASGI server",
    )
    parser.add_argument(
        "--web-procs",
        type=int,
        default=web_procs,
        help="HTTP server processes (gunicorn, granian or ASGI)",
    )
    parser.add_argument(
        "--http-threads",
        type=int,
        default=4,
        help="threads per gunicorn worker (gthread workers; 1: sync workers) or granian worker "
        "(blocking threads)",
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, help="readings/s offered (default: the targets)")
    parser.add_argument("--duration", type=float, default=180.0, help="measured seconds")
    parser.add_argument(
        "--warmup",
        type=float,
        default=40.0,
        help="unmeasured seconds first: the shards learn their late allowance over the first "
        "WARDWISE_LATE_ALLOWANCE_WINDOW_S (30 s) and hold for the maximum until then",
    )
    parser.add_argument("--drain", type=float, default=30.0, help="max seconds to drain")
    parser.add_argument("--find-max", action="store_true", help="step rates until one fails")
    parser.add_argument("--quick", action="store_true", help="20 s smoke run at 2,000/s")
    add_server_arguments(parser, server="gunicorn", web_procs=1)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--floors", type=int, default=5)
    parser.add_argument("--rooms-per-side", type=int, default=25)
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--watch-floors", type=int, default=2, help="websocket clients")
    parser.add_argument(
        "--heard-spread",
        type=float,
        default=0.0,
        metavar="S",
        help="each reading was heard at a random moment of the S seconds before its batch was "
        "sent, as by a gateway that batches (the agent's default: 1); 0: posted as heard",
    )
    parser.add_argument("--label", help="key of this run in load.json (default from options)")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the stack")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.drain = 20.0, 5.0, 15.0
        args.rate = args.rate or 2_000
    mode = "find-max" if args.find_max else ("quick" if args.quick else "rate")
    args.mode = mode
    if args.label is None:
        rates = "targets" if args.rate is None else str(args.rate)
        what = "find-max" if args.find_max else rates
        args.label = f"{what} {args.server} web={args.web_procs} workers={args.workers}"
        if args.server in SPLIT_SERVERS:
            args.label += f" threads={args.http_threads}"
        if args.env:
            args.label += " " + " ".join(args.env)
    return args


def free_port() -> int:
    """A port nobody listens on now (others may run their own servers on this machine)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


PORT = free_port()
#: Port of the WSGI server in the SPLIT_SERVERS layouts (the ASGI server keeps PORT).
HTTP_PORT = free_port()


def granian_command(port: int, processes: int, threads: int) -> list[str]:
    """granian's WSGI server on the device application: HTTP parsing and connections in Rust,
    the application in `threads` blocking threads per process."""
    return [
        sys.executable, "-m", "granian", "--interface", "wsgi",
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(processes), "--blocking-threads", str(threads),
        "--backlog", "4096", "--log-level", "warning", "--no-ws",
        "hospital.device_wsgi:application",
    ]  # fmt: skip


def stack_env(args: argparse.Namespace) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "WARDWISE_PRODUCTION"}
    # Other benchmarks reusing this stack (bench.coldchain) name their own database and Redis db.
    database = getattr(args, "bench_db", BENCH_DB)
    redis_db = getattr(args, "redis_db", REDIS_DB)
    env.update(
        DATABASE_URL=f"{PG_SERVER}/{database}",
        REDIS_URL=f"redis://127.0.0.1:6379/{redis_db}",
        DEBUG="false",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="hospital.settings",
        PYTHONPATH=str(ROOT),
    )
    for item in args.env:
        name, _, value = item.partition("=")
        env[name] = value
    return env


def recreate_database(name: str = BENCH_DB) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")


def prepare(args: argparse.Namespace) -> dict:
    """Fresh database and Redis, the site, tokens, a nurse session. Returns what the load needs."""
    import django

    recreate_database(getattr(args, "bench_db", BENCH_DB))
    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Group as AuthGroup
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.db import connections

    from hospital.devices import issue_token
    from hospital.models import Floor
    from hospital.roles import NURSE
    from hospital.site_loader import load_site_document
    from tracking import bus
    from tracking.models import Asset, AssetType, Scanner, Tag
    from tracking.simulation.layout import ASSET_TYPES, generate_hospital, ibeacon_tag
    from tracking.tagids import canonical_tag_id

    bus.client().flushdb()
    call_command("migrate", verbosity=0)
    document = generate_hospital(
        floors=args.floors,
        rooms_per_side=args.rooms_per_side,
        scanner_policy="per-room",
        assets_per_floor=0,
    )
    for building in document["buildings"]:
        for floor in building["floors"]:
            floor["sensors"] = []
    load_site_document(document)
    # Thousands of assets through the site loader would take minutes of upserts; bulk insert.
    types = [
        AssetType.objects.get_or_create(slug=slug, defaults={"name": name})[0]
        for slug, name, _ in ASSET_TYPES
    ]
    per_floor = math.ceil(args.tags / args.floors)
    tags, assets = [], []
    for index in range(args.tags):
        level, minor = index % args.floors + 1, index // args.floors + 1
        tags.append((canonical_tag_id(ibeacon_tag(level, minor)), level))
        assets.append(Asset(name=f"Bench asset {index + 1}", asset_type=types[index % len(types)]))
    Asset.objects.bulk_create(assets, batch_size=2000)
    Tag.objects.bulk_create(
        [
            Tag(tag_id=tag, kind="ibeacon", asset=asset)
            for (tag, _), asset in zip(tags, assets, strict=True)
        ],
        batch_size=2000,
    )
    scanners = [
        (scanner.serial, issue_token(scanner=scanner))
        for scanner in Scanner.objects.order_by("serial")
    ]
    user = User.objects.create_user("bench-nurse", password=uuid.uuid4().hex)
    user.groups.add(AuthGroup.objects.get(name=NURSE))
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    floors = list(Floor.objects.order_by("level").values_list("pk", flat=True))
    connections.close_all()
    return {
        "scanners": scanners,
        "links": radio_links(document, tags, LINKS_PER_TAG, seed=1),
        "sessionid": session.session_key,
        "floors": floors,
        "tags_per_floor": per_floor,
    }


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 1):
            return True
    except OSError:
        return False


class Stack:
    """The subprocesses of one benchmark: started in their own process groups, always killed."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.env = stack_env(args)
        self.processes: dict[str, subprocess.Popen] = {}

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "w")  # noqa: SIM115  (owned by the process)
        process = subprocess.Popen(  # nosec B603
            command,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def start(self) -> None:
        if self.args.server in SPLIT_SERVERS:
            self._start_split_layout()
            return
        python = sys.executable
        if self.args.server == "uvicorn":
            command = [
                python, "-m", "uvicorn", "hospital.asgi:application",
                "--host", "127.0.0.1", "--port", str(PORT),
                "--workers", str(self.args.web_procs),
                "--loop", "uvloop", "--http", "httptools", "--ws", "websockets",
                "--no-access-log", "--log-level", "warning", "--backlog", "4096",
            ]  # fmt: skip
        else:
            command = [
                python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(PORT),
                "--verbosity", "0", "hospital.asgi:application",
            ]  # fmt: skip
        self.spawn("web", command)
        for index in range(self.args.workers):
            self.spawn(
                f"worker-{index + 1}",
                [
                    python, "-m", "celery", "-A", "bench.loadworker", "worker",
                    "-P", "solo", "-n", f"bench{index + 1}@%h", "--loglevel", "WARNING",
                    "--without-gossip", "--without-mingle", "--without-heartbeat",
                ],
            )  # fmt: skip

    def _start_split_layout(self) -> None:
        """docs/deployment.md: HTTP (the REST ingestion) through a WSGI server (gunicorn as
        shipped, or granian), websockets through one ASGI process beside it."""
        http_server, http_procs = self.args.server, self.args.web_procs
        self.args.server, self.args.web_procs = "uvicorn", 1
        try:
            self.start()
        finally:
            self.args.server, self.args.web_procs = http_server, http_procs
        if http_server == "granian":
            self._start_granian(http_procs)
        else:
            self._start_gunicorn(http_procs)

    def _start_granian(self, http_procs: int) -> None:
        self.spawn("http", granian_command(HTTP_PORT, http_procs, self.args.http_threads))

    def _start_gunicorn(self, http_procs: int) -> None:
        threads = ["--threads", str(self.args.http_threads)]
        if self.args.http_threads > 1:
            threads += ["--worker-class", "gthread"]
        self.spawn(
            "http",
            [
                sys.executable, "-m", "gunicorn", "hospital.device_wsgi:application",
                "--bind", f"127.0.0.1:{HTTP_PORT}", "--workers", str(http_procs),
                *threads, "--backlog", "4096", "--log-level", "warning",
                # Longer than the probes' idle keep-alive (60 s): the client closes first, so it
                # never sends on a connection the server is closing.
                "--keep-alive", "75",
            ],
        )  # fmt: skip

    def server_groups(self) -> list[Group]:
        """The servers' process groups for the CPU and memory figures."""
        split = self.args.server in SPLIT_SERVERS
        web = "uvicorn, websockets" if split else self.args.server
        groups = [Group(f"web ({web})", root=self.processes["web"].pid)]
        if "http" in self.processes:
            groups.append(Group(f"http ({self.args.server})", root=self.processes["http"].pid))
        return groups

    @property
    def http_url(self) -> str:
        port = HTTP_PORT if self.args.server in SPLIT_SERVERS else PORT
        return f"http://127.0.0.1:{port}"

    def wait_ready(self, redis_client, timeout_s: float = 240.0) -> None:
        """The servers answer and every worker has its engine built."""
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            self.check_alive()
            warm = redis_client.scard("bench:warm")
            ports = [PORT, HTTP_PORT] if self.args.server in SPLIT_SERVERS else [PORT]
            if warm >= self.args.workers and all(_listening(port) for port in ports):
                return
            time.sleep(0.5)
        raise RuntimeError(f"stack not ready after {timeout_s:.0f} s; logs in {self.workdir}")

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None and not name.startswith(("gen", "watch")):
                log = (self.workdir / f"{name}.log").read_text()[-2000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{log}")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.time() + 10
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def counter_totals(counters: dict[str, float]) -> dict[str, float]:
    """The shared counters bench.load reads, summed over their labels."""
    totals: dict[str, float] = {}
    for field, value in counters.items():
        name, _, labels = field.partition("|")
        if name == "readings_dropped_total":
            name = "dropped_" + json.loads(labels)["reason"].replace("-", "_")
        totals[name] = totals.get(name, 0.0) + value
    return totals


def bucket_counts(counters: dict[str, float], name: str) -> dict[str, float]:
    """The per-bucket counters of the shared histogram `name`, by `le`."""
    prefix = f"{name}_bucket|"
    return {
        json.loads(field[len(prefix) :])["le"]: value
        for field, value in counters.items()
        if field.startswith(prefix)
    }


def bucket_quantiles(
    before: dict[str, float], after: dict[str, float], bounds: tuple[float, ...]
) -> dict:
    """p50 / p95 / p99 of what a histogram gained between two samples, interpolated within the
    bucket as Prometheus's histogram_quantile does (a quantile in the +Inf bucket reads as the
    largest bound)."""
    les = [*map(str, bounds), "+Inf"]
    gained = [after.get(le, 0.0) - before.get(le, 0.0) for le in les]
    total = sum(gained)
    result: dict = {"count": round(total)}
    if total <= 0:
        return result
    for label, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        rank, below, lower = q * total, 0.0, 0.0
        for bound, count in zip([*bounds, bounds[-1]], gained, strict=True):
            if count > 0 and below + count >= rank:
                result[label] = round(lower + (bound - lower) * (rank - below) / count, 3)
                break
            below, lower = below + count, bound
    return result


def held_readings(client, shards: int) -> int:
    pipe = client.pipeline(transaction=False)
    for shard in range(shards):
        pipe.get(f"ww:held:{shard}")
    return sum(len(json.loads(raw)) for raw in pipe.execute() if raw)


def cursor_lag_s(client, shards: int) -> float:
    """Worst shard: time between the newest stream entry and the one its cursor points at."""
    pipe = client.pipeline(transaction=False)
    for shard in range(shards):
        pipe.get(f"ww:cursor:{shard}")
        pipe.xrevrange(f"ww:rssi:{shard}", count=1)
    replies = pipe.execute()
    worst = 0.0
    for cursor, newest in zip(replies[::2], replies[1::2], strict=True):
        if not newest:
            continue
        newest_ms = int(newest[0][0].split(b"-")[0])
        cursor_ms = int((cursor or b"0-0").split(b"-")[0]) or newest_ms
        worst = max(worst, (newest_ms - cursor_ms) / 1000)
    return worst


class Monitor:
    """Samples counters, backlog and processes every SAMPLE_S while a load step runs."""

    def __init__(self, redis_client, sampler: Sampler, shards: int) -> None:
        from hospital import observability

        self.read_shared = observability.read_shared
        self.client = redis_client
        self.sampler = sampler
        self.shards = shards
        self.samples: list[dict] = []

    def sample(self) -> dict:
        counters, gauges = self.read_shared()
        totals = counter_totals(counters)
        row = {
            "t": time.time(),
            "accepted": totals.get("readings_accepted_total", 0.0),
            "processed": totals.get("readings_processed_total", 0.0),
            "dropped": totals.get("dropped_late", 0.0) + totals.get("dropped_unknown_tag", 0.0),
            "dropped_late": totals.get("dropped_late", 0.0),
            "positions": totals.get("positions_total", 0.0),
            "cursor_lag_s": cursor_lag_s(self.client, self.shards),
            "processing_lag_s": gauges.get("processing_lag_seconds", 0.0),
            "wait_buckets": bucket_counts(counters, "reading_wait_seconds"),
            "drain_buckets": bucket_counts(counters, "drain_seconds"),
            "hold_buckets": bucket_counts(counters, "late_allowance_seconds"),
        }
        row["backlog"] = row["accepted"] - row["processed"] - row["dropped"]
        self.sampler.sample()
        self.samples.append(row)
        return row


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (units per second)."""
    if len(points) < 2:
        return 0.0
    mean_t = sum(p[0] for p in points) / len(points)
    mean_v = sum(p[1] for p in points) / len(points)
    spread = sum((p[0] - mean_t) ** 2 for p in points)
    return sum((p[0] - mean_t) * (p[1] - mean_v) for p in points) / spread if spread else 0.0


def run_step(stack: Stack, monitor: Monitor, prepared: dict, rate: int, args) -> dict:
    """One load point: gateways and watchers for warm-up + duration, then the drain."""
    workdir = stack.workdir
    run_id = uuid.uuid4().hex[:8]
    pairs = sum(len(tags) for tags, _ in prepared["links"].values())
    start_at = time.time() + 3.0
    common = {
        "base_url": stack.http_url,
        "start_at": start_at,
        "duration_s": args.warmup + args.duration,
        "drain_s": min(args.drain, 10.0),
        "seed": 7,
        "run_id": run_id,
    }
    gen_config = {
        **common,
        "scanners": prepared["scanners"],
        "links": prepared["links"],
        "link_probability": min(1.0, rate / pairs),
        "heard_spread_s": args.heard_spread,
    }
    watch_config = {
        **common,
        "ws_url": f"ws://127.0.0.1:{PORT}/ws/floors/{{floor_id}}/",
        "origin": f"http://127.0.0.1:{PORT}",
        "sessionid": prepared["sessionid"],
        "floors": prepared["floors"][: args.watch_floors],
    }
    for name, config in (("gen", gen_config), ("watch", watch_config)):
        (workdir / f"{name}-{run_id}.json").write_text(json.dumps(config))
    outputs = {name: workdir / f"{name}-{run_id}.out.json" for name in ("gen", "watch")}
    for name in ("watch", "gen"):
        stack.spawn(
            f"{name}-{run_id}",
            [
                sys.executable, "-m", "bench.loadgen", "scanners" if name == "gen" else "watch",
                str(workdir / f"{name}-{run_id}.json"), str(outputs[name]),
            ],
        )  # fmt: skip
    gen_process = stack.processes[f"gen-{run_id}"]
    watch_process = stack.processes[f"watch-{run_id}"]
    monitor.sampler.groups += [
        Group(f"load generator ({run_id})", root=gen_process.pid),
        Group(f"websocket watchers ({run_id})", root=watch_process.pid),
    ]
    window = (start_at + args.warmup, start_at + args.warmup + args.duration)
    end_of_load = start_at + args.warmup + args.duration
    print(f"  {rate:>6} readings/s offered: warm-up {args.warmup:.0f} s, measure "
          f"{args.duration:.0f} s", flush=True)  # fmt: skip
    monitor.samples.clear()
    last_print = 0.0
    while time.time() < end_of_load + 1.0 or gen_process.poll() is None:
        stack.check_alive()
        row = monitor.sample()
        if row["t"] - last_print >= 10:
            last_print = row["t"]
            print(
                f"    t={row['t'] - start_at:6.0f}s accepted={row['accepted']:>10.0f} "
                f"processed={row['processed']:>10.0f} backlog={row['backlog']:>8.0f} "
                f"cursor-lag={row['cursor_lag_s']:5.1f}s",
                flush=True,
            )
        if time.time() > end_of_load + 60:
            break
        time.sleep(SAMPLE_S)
    drain_deadline = time.time() + args.drain
    held = held_readings(monitor.client, monitor.shards)
    while time.time() < drain_deadline:
        row = monitor.sample()
        held = held_readings(monitor.client, monitor.shards)
        if row["backlog"] - held <= 0 and held == 0:
            break
        time.sleep(1.0)
    final = monitor.sample()
    held = held_readings(monitor.client, monitor.shards)
    with contextlib.suppress(subprocess.TimeoutExpired):
        watch_process.wait(timeout=30)
    gen_process.wait(timeout=30)
    generator = json.loads(outputs["gen"].read_text()) if outputs["gen"].exists() else {}
    watchers = json.loads(outputs["watch"].read_text()) if outputs["watch"].exists() else {}
    return summarize(rate, args, window, monitor, generator, watchers, final, held)


def summarize(rate, args, window, monitor, generator, watchers, final, held) -> dict:
    from hospital.observability import HISTOGRAM_BUCKETS

    start, end = window
    inside = [s for s in monitor.samples if start <= s["t"] <= end]
    first, last = (inside[0], inside[-1]) if len(inside) >= 2 else (final, final)
    elapsed = max(last["t"] - first["t"], 1e-9)
    seconds = {
        int(k): v
        for k, v in generator.get("seconds", {}).items()
        if args.warmup <= int(k) < args.warmup + args.duration
    }
    names = (
        "offered",
        "accepted",
        "rejected",
        "refused",
        "deferred",
        "errors",
        "requests",
        "ticks_skipped",
    )
    sent = {name: sum(b.get(name, 0) for b in seconds.values()) for name in names}
    statuses: dict[str, float] = {}
    for bucket in generator.get("seconds", {}).values():
        for name, value in bucket.items():
            if name.startswith(("status_", "error_")):
                statuses[name] = statuses.get(name, 0) + value
    latencies = sorted(
        lat for received, lat in watchers.get("samples", []) if start <= received <= end
    )
    half = [(s["t"], s["backlog"]) for s in inside[len(inside) // 3 :]]
    growth = slope(half)
    offered_rate = sent["offered"] / args.duration
    accepted_rate = (last["accepted"] - first["accepted"]) / elapsed
    done = last["processed"] + last["dropped"] - first["processed"] - first["dropped"]
    processed_rate = done / elapsed
    unaccounted = final["accepted"] - final["processed"] - final["dropped"] - held
    # Only a drained stack can prove a loss; otherwise the rest is a backlog still in Redis.
    drained = final["cursor_lag_s"] == 0.0
    lost = unaccounted if drained else None
    backlog_end = last["backlog"]
    sustained = (
        sent["offered"] > 0
        and sent["accepted"] >= SUSTAINED_SHARE * sent["offered"]
        and processed_rate >= SUSTAINED_SHARE * accepted_rate
        and growth <= 0.02 * max(accepted_rate, 1.0)
        and last["cursor_lag_s"] < 5.0
        and sent["ticks_skipped"] == 0
    )
    return {
        "rate_target": rate,
        "window_s": round(elapsed, 1),
        "offered_per_s": round(offered_rate, 1),
        "accepted_per_s": round(accepted_rate, 1),
        "accepted_by_gateways_per_s": round(sent["accepted"] / args.duration, 1),
        "processed_per_s": round(processed_rate, 1),
        "positions_per_s": round((last["positions"] - first["positions"]) / elapsed, 1),
        "dropped_late_per_s": round(
            (last.get("dropped_late", 0.0) - first.get("dropped_late", 0.0)) / elapsed, 1
        ),
        "backlog_start": round(first["backlog"]),
        "backlog_end": round(backlog_end),
        "backlog_growth_per_s": round(growth, 1),
        "cursor_lag_end_s": round(last["cursor_lag_s"], 2),
        "cursor_lag_max_s": round(max((s["cursor_lag_s"] for s in inside), default=0.0), 2),
        "rejected_readings": sent["rejected"],
        "refused_readings": sent["refused"],
        "deferred_readings": sent["deferred"],
        "request_errors": sent["errors"],
        "ticks_skipped": sent["ticks_skipped"],
        "statuses": statuses,
        "request_ms": generator.get("request_ms", {}),
        "latency_s": {
            k: (round(v, 3) if k != "count" else v) for k, v in percentiles(latencies).items()
        },
        "worker_wait_s": bucket_quantiles(
            first["wait_buckets"], last["wait_buckets"], HISTOGRAM_BUCKETS["reading_wait_seconds"]
        ),
        "drain_s": bucket_quantiles(
            first["drain_buckets"], last["drain_buckets"], HISTOGRAM_BUCKETS["drain_seconds"]
        ),
        "late_allowance_s": bucket_quantiles(
            first["hold_buckets"],
            last["hold_buckets"],
            HISTOGRAM_BUCKETS["late_allowance_seconds"],
        ),
        "websocket": {**watchers.get("stats", {}), "errors": watchers.get("errors", [])},
        "end": {
            "accepted_total": final["accepted"],
            "processed_total": final["processed"],
            "dropped_total": final["dropped"],
            "held": held,
            "drained": drained,
            "unprocessed": unaccounted,
            "lost": lost,
        },
        "processes": monitor.sampler.summary(start, end),
        "sustained": sustained,
    }


def save_results(name: str, report: dict, text: str) -> None:
    """bench/results/<name>.json and .md for a benchmark that keeps only its last run."""
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
    (RESULTS_DIR / f"{name}.md").write_text(text)


def machine() -> dict:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        names = (ln.split(":", 1)[1].strip() for ln in handle if ln.startswith("model name"))
        model = next(names, "")
    with open("/proc/meminfo") as handle:
        memory_kb = int(handle.readline().split()[1])
    return {
        "load_average": open("/proc/loadavg").read().split()[:3],
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def run(args: argparse.Namespace) -> dict:
    env = stack_env(args)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "DEBUG", "LOG_LEVEL")})
    os.environ.update({item.partition("=")[0]: item.partition("=")[2] for item in args.env})
    os.environ.pop("WARDWISE_PRODUCTION", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hospital.settings")
    t0 = time.time()
    print("preparing database, Redis and the site ...", flush=True)
    prepared = prepare(args)
    from django.conf import settings

    from tracking import bus

    print(f"  prepared in {time.time() - t0:.0f} s: {len(prepared['scanners'])} scanners, "
          f"{args.tags} tags, {args.floors} floors", flush=True)  # fmt: skip
    client = bus.client()
    workdir = Path(tempfile.mkdtemp(prefix="wardwise-load-"))
    stack = Stack(args, workdir)
    results = []
    try:
        stack.start()
        t0 = time.time()
        stack.wait_ready(client)
        print(f"  stack ready in {time.time() - t0:.0f} s (logs in {workdir})", flush=True)
        sampler = Sampler(
            stack.server_groups()
            + [
                Group(name, root=process.pid)
                for name, process in stack.processes.items()
                if name.startswith("worker")
            ]
            + [Group("postgresql", comm="postgres"), Group("redis", comm="redis-server")]
        )
        monitor = Monitor(client, sampler, settings.WARDWISE["SHARDS"])
        if args.find_max:
            rates = FIND_MAX_RATES
        elif args.rate:
            rates = (args.rate,)
        else:
            rates = TARGETS
        for rate in rates:
            result = run_step(stack, monitor, prepared, rate, args)
            results.append(result)
            print_result(result)
            if args.find_max and not result["sustained"]:
                break
    finally:
        stack.stop()
    return {
        "label": args.label,
        "mode": args.mode,
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": "python -m bench.load " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "config": {
            "server": args.server,
            "web_processes": args.web_procs,
            "http_threads": args.http_threads if args.server in SPLIT_SERVERS else None,
            "celery_workers": args.workers,
            "tags": args.tags,
            "floors": args.floors,
            "scanners": len(prepared["scanners"]),
            "links_per_tag": LINKS_PER_TAG,
            "shards": settings.WARDWISE["SHARDS"],
            "late_allowance_s": settings.WARDWISE["LATE_ALLOWANCE_S"],
            "late_allowance_min_s": settings.WARDWISE["LATE_ALLOWANCE_MIN_S"],
            "heard_spread_s": args.heard_spread,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "env": args.env,
        },
        "runs": results,
    }


def print_result(result: dict) -> None:
    latency = result["latency_s"]
    end = result["end"]
    print(
        f"  => offered {result['offered_per_s']:.0f}/s, accepted {result['accepted_per_s']:.0f}/s,"
        f" processed {result['processed_per_s']:.0f}/s, backlog growth "
        f"{result['backlog_growth_per_s']:.0f}/s, cursor lag {result['cursor_lag_end_s']} s, "
        f"latency p50/p95/p99 {latency.get('p50')}/{latency.get('p95')}/{latency.get('p99')} s "
        f"(n={latency.get('count')}), {wait_text(result)}, refused "
        f"{result['refused_readings']}, deferred {result.get('deferred_readings', 0)}, errors "
        f"{result['request_errors']}, lost {end['lost']} (unprocessed {end['unprocessed']:.0f}), "
        f"{'SUSTAINED' if result['sustained'] else 'NOT sustained'}",
        flush=True,
    )
    for name, figures in result["processes"].items():
        cpu, rss = figures["cpu_pct"], figures["rss_mb_max"]
        print(f"     {name:<34} cpu {cpu:6.1f} %  rss {rss:8.1f} MB")


def wait_text(result: dict) -> str:
    """The workers' side of the latency, from their histograms (older results have none)."""
    wait, drain = result.get("worker_wait_s", {}), result.get("drain_s", {})
    hold = result.get("late_allowance_s", {})
    text = (
        f"receipt-to-worker p50/p95/p99 {wait.get('p50')}/{wait.get('p95')}/{wait.get('p99')} s, "
        f"{drain.get('count', 0) / max(result['window_s'], 1e-9):.1f} drains/s taking "
        f"p50/p99 {drain.get('p50')}/{drain.get('p99')} s"
    )
    if hold.get("count"):
        text += f", late allowance p50/p99 {hold.get('p50')}/{hold.get('p99')} s"
    if "dropped_late_per_s" in result:
        text += f", dropped as late {result['dropped_late_per_s']}/s"
    return text


def markdown(all_results: dict) -> str:
    lines = [
        "# Load benchmark results",
        "",
        "Written by `python -m bench.load` (see docs/performance.md for what the figures mean).",
        "",
    ]
    for label, report in all_results.items():
        config = report["config"]
        lines += [
            f"## {label}",
            "",
            f"`{report['command']}` at {report['when']}; {report['machine']['cpus']} CPUs "
            f"({report['machine']['cpu_model']}); {config['server']} x{config['web_processes']}, "
            f"{config['celery_workers']} Celery workers (solo), {config['tags']} tags, "
            f"{config['scanners']} scanners, {config['shards']} shards, "
            f"{config['duration_s']:.0f} s measured"
            + (f", env {config['env']}" if config["env"] else "")
            + (
                f", readings heard up to {config['heard_spread_s']} s before their batch was sent"
                if config.get("heard_spread_s")
                else ""
            )
            + ".",
            "",
            "| offered/s | accepted/s | processed/s | positions/s | backlog growth/s | "
            "cursor lag end | latency p50 / p95 / p99 (s) | refused | deferred | errors | lost | "
            "sustained |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for run in report["runs"]:
            latency = run["latency_s"]
            lines.append(
                f"| {run['offered_per_s']:.0f} | {run['accepted_per_s']:.0f} | "
                f"{run['processed_per_s']:.0f} | {run['positions_per_s']:.0f} | "
                f"{run['backlog_growth_per_s']:.0f} | {run['cursor_lag_end_s']} s | "
                f"{latency.get('p50')} / {latency.get('p95')} / {latency.get('p99')} | "
                f"{run['refused_readings']:.0f} | {run.get('deferred_readings', 0):.0f} | "
                f"{run['request_errors']:.0f} | "
                f"{run['end']['lost']} (backlog {run['end'].get('unprocessed', 0):.0f}) | "
                f"{'yes' if run['sustained'] else 'no'} |"
            )
        lines += [""] + [
            f"Workers ({run['rate_target']}/s, histograms `reading_wait_seconds` and "
            f"`drain_seconds`): {wait_text(run)}."
            for run in report["runs"]
            if "worker_wait_s" in run
        ]
        lines += ["", "CPU (100 % = one core) and peak RSS per process group:", ""]
        lines += ["| offered/s | process | CPU % | RSS MB |", "|---|---|---|---|"]
        for run in report["runs"]:
            for name, figures in run["processes"].items():
                lines.append(
                    f"| {run['rate_target']} | {name} | {figures['cpu_pct']} | "
                    f"{figures['rss_mb_max']} |"
                )
        lines.append("")
    return "\n".join(lines)


def save(report: dict) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / "load.json"
    all_results = json.loads(path.read_text()) if path.exists() else {}
    all_results[report["label"]] = report
    path.write_text(json.dumps(all_results, indent=1) + "\n")
    (RESULTS_DIR / "load.md").write_text(markdown(all_results))
    print(f"results in {path} and {RESULTS_DIR / 'load.md'}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    save(run(args))


if __name__ == "__main__":
    main()
