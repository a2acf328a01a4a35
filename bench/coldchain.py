"""Cold-chain benchmark against the real stack on this machine (docs/cold-chain.md, "Benchmark").

    python -m bench.coldchain                   # 2,000 sensors every 10 s + 1,000 RSSI readings/s
    python -m bench.coldchain --rssi-rate 2000 --duration 300
    python -m bench.coldchain --quick           # 30 s smoke run with 500 sensors

What it does: drops and creates the PostgreSQL database `wardwise_bench_coldchain`, flushes Redis
database 8, migrates and loads a generated hospital with tagged assets (bench.load's `prepare`),
then adds the sensors, each with its own device token, held to a copy of the vaccine-refrigerator
profile (2-8 °C) with an alarm delay and a hysteresis of two intervals, and a facilities user's
session. It starts the servers and Celery workers (bench.load's `Stack`; by default the layout of
docs/deployment.md: HTTP through gunicorn, `--web-procs` workers of `--http-threads` threads,
websockets through one uvicorn process; `--server uvicorn|daphne` serves everything through the
ASGI server), then at once:
- the RSSI load of the tracking pipeline (bench.loadgen's gateways) at `--rssi-rate`;
- the sensors (bench.coldchaingen), one request per reading, every `--interval` s; one sensor in
  `--excursion-one-in` has an excursion every `--excursion-every` s;
- the facilities alert console on `ws/alerts/` (bench.coldchaingen).

Figures over the measurement window (after the warm-up):
- ingestion throughput: environmental readings accepted (202) per second, and RSSI readings;
- alert latency: for each reading that completes an alarm condition, from its receipt by the server
  (the alert's `opened_at` is the receiving request's clock reading) to the `opened` event arriving
  on the console; also from the moment the probe sent it;
- missing alerts: completing readings acknowledged with 202 whose alert never reached the console;
- lost readings: readings acknowledged with 202 minus the rows stored in PostgreSQL (must be 0).

Results: bench/results/coldchain.json and .md. Only 127.0.0.1 is contacted; every subprocess is
killed on exit, error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

from bench import load
from bench.loadgen import percentiles
from bench.procstat import Group, Sampler

RESULTS_DIR = load.RESULTS_DIR
BENCH_DB = "wardwise_bench_coldchain"
#: Redis database of this benchmark (flushed); bench.load uses 7, tests 10-15.
REDIS_DB = 8
PROFILE_SLUG = "bench-vaccine-refrigerator"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sensors", type=int, default=2000)
    parser.add_argument(
        "--interval", type=float, default=10.0, help="s between a sensor's readings"
    )
    parser.add_argument("--rssi-rate", type=int, default=1000, help="RSSI readings/s (0: none)")
    parser.add_argument("--duration", type=float, default=120.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=20.0, help="unmeasured seconds first")
    parser.add_argument("--drain", type=float, default=15.0, help="seconds to wait for alerts")
    parser.add_argument("--excursion-one-in", type=int, default=10, help="1 sensor in N has them")
    parser.add_argument("--excursion-every", type=float, default=120.0, help="s between excursions")
    load.add_server_arguments(parser, server="gunicorn", web_procs=2)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--floors", type=int, default=2)
    parser.add_argument("--rooms-per-side", type=int, default=20)
    parser.add_argument("--tags", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="30 s smoke run, 500 sensors")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the stack")
    parser.add_argument("--label", help="key of this run in coldchain.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.sensors, args.duration, args.warmup = min(args.sensors, 500), 30.0, 10.0
    args.bench_db, args.redis_db = BENCH_DB, REDIS_DB
    args.alarm_delay_s = 2 * args.interval
    args.excursion_readings = 4
    if args.label is None:
        args.label = (
            f"{args.sensors} sensors/{args.interval:g}s + {args.rssi_rate} rssi/s "
            f"{args.server} web={args.web_procs} workers={args.workers}"
        )
        if args.server == "gunicorn" and args.http_threads > 1:
            args.label += f" threads={args.http_threads}"
        if args.env:
            args.label += " " + " ".join(args.env)
    return args


def prepare(args: argparse.Namespace) -> dict:
    """bench.load's site, tags and tokens, plus the sensors and a facilities session."""
    prepared = load.prepare(args)
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Group as AuthGroup
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import connections

    from environment.models import Sensor, ThresholdProfile
    from hospital.devices import issue_token
    from hospital.models import Zone
    from hospital.roles import FACILITIES

    preset = ThresholdProfile.objects.get(slug="vaccine-refrigerator")
    profile = ThresholdProfile.objects.create(
        slug=PROFILE_SLUG,
        name="Vaccine refrigerator, benchmark timing",
        temperature_min_c=preset.temperature_min_c,
        temperature_max_c=preset.temperature_max_c,
        temperature_critical_min_c=preset.temperature_critical_min_c,
        temperature_critical_max_c=preset.temperature_critical_max_c,
        alarm_delay_s=int(args.alarm_delay_s),
        clear_hysteresis_s=int(args.alarm_delay_s),
    )
    zones = list(Zone.objects.exclude(kind="corridor").order_by("pk"))
    sensors = Sensor.objects.bulk_create(
        [
            Sensor(
                serial=f"bench-fridge-{index:05d}",
                kind="refrigerator",
                zone=zones[index % len(zones)],
                profile=profile,
                contents="Vaccines",
                expected_interval_s=int(args.interval),
            )
            for index in range(args.sensors)
        ]
    )
    tokens = [(sensor.serial, issue_token(sensor=sensor)) for sensor in sensors]
    user = User.objects.create_user("bench-facilities", password=uuid.uuid4().hex)
    user.groups.add(AuthGroup.objects.get(name=FACILITIES))
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    connections.close_all()
    return {**prepared, "sensors": tokens, "facilities_session": session.session_key}


def spawn_load(stack: load.Stack, prepared: dict, args, run_id: str) -> dict:
    """The RSSI gateways, the sensors and the console, as separate processes."""
    workdir = stack.workdir
    start_at = time.time() + 5.0
    common = {
        "base_url": stack.http_url,
        "start_at": start_at,
        "duration_s": args.warmup + args.duration,
        "drain_s": args.drain,
        "seed": 7,
        "run_id": run_id,
    }
    configs = {
        "console": {
            **common,
            "ws_url": f"ws://127.0.0.1:{load.PORT}/ws/alerts/",
            "origin": f"http://127.0.0.1:{load.PORT}",
            "sessionid": prepared["facilities_session"],
        },
        "sensors": {
            **common,
            "sensors": prepared["sensors"],
            "sensor_count": len(prepared["sensors"]),
            "interval_s": args.interval,
            "alarm_delay_s": args.alarm_delay_s,
            "excursion_one_in": args.excursion_one_in,
            "excursion_every_s": args.excursion_every,
            "excursion_readings": args.excursion_readings,
        },
    }
    if args.rssi_rate:
        pairs = sum(len(tags) for tags, _ in prepared["links"].values())
        configs["gen"] = {
            **common,
            "drain_s": 5.0,
            "scanners": prepared["scanners"],
            "links": prepared["links"],
            "link_probability": min(1.0, args.rssi_rate / pairs),
        }
    # Process names start with gen/watch: bench.load's Stack lets those exit when done.
    process_names = {"gen": "gen-rssi", "sensors": "gen-sensors", "console": "watch-console"}
    outputs = {}
    for name, config in configs.items():
        path = workdir / f"{name}-{run_id}.json"
        path.write_text(json.dumps(config))
        outputs[name] = workdir / f"{name}-{run_id}.out.json"
        module = "bench.loadgen" if name == "gen" else "bench.coldchaingen"
        mode = "scanners" if name == "gen" else name
        stack.spawn(
            f"{process_names[name]}-{run_id}",
            [sys.executable, "-m", module, mode, str(path), str(outputs[name])],
        )
    return {"start_at": start_at, "outputs": outputs}


def stored_readings() -> int:
    from environment.models import EnvironmentReading

    return EnvironmentReading.objects.count()


def unstored(acknowledged: list) -> int:
    """Readings answered with a 2xx that are not in PostgreSQL (must be none)."""
    from environment.models import EnvironmentReading

    stored = {
        (serial, round(ts.timestamp(), 3))
        for serial, ts in EnvironmentReading.objects.values_list("sensor__serial", "ts")
    }
    return sum(1 for serial, ts in acknowledged if (serial, ts) not in stored)


def measure(args, stack: load.Stack, sampler: Sampler, spawned: dict, run_id: str) -> dict:
    start_at = spawned["start_at"]
    window = (start_at + args.warmup, start_at + args.warmup + args.duration)
    names = [n for n in stack.processes if n.endswith(run_id)]
    for name in names:
        sampler.groups.append(Group(name.rsplit("-", 1)[0], root=stack.processes[name].pid))
    end = start_at + args.warmup + args.duration + args.drain + 60
    last_print = 0.0
    while any(stack.processes[n].poll() is None for n in names) and time.time() < end:
        stack.check_alive()
        sampler.sample()
        if time.time() - last_print >= 10:
            last_print = time.time()
            print(f"    t={time.time() - start_at:5.0f}s stored={stored_readings():>8}", flush=True)
        time.sleep(load.SAMPLE_S)
    outputs = {
        name: json.loads(path.read_text()) if path.exists() else {}
        for name, path in spawned["outputs"].items()
    }
    lost = unstored(outputs.get("sensors", {}).get("acknowledged", []))
    return summarize(args, window, outputs, stored_readings(), lost, sampler.summary(*window))


def _epoch(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp).timestamp() if stamp else None


def summarize(args, window, outputs: dict, stored: int, lost: int, processes: dict) -> dict:
    start, end = window
    sensors = outputs.get("sensors", {})
    console = outputs.get("console", {})
    gen = outputs.get("gen", {})
    opened = {}
    for event in console.get("events", []):
        if event["event"] == "opened" and event["sensor"]:
            opened.setdefault((event["sensor"], event["kind"]), []).append(event)
    from_receipt, from_send, missing = [], [], 0
    for reading in sensors.get("completing", []):
        if not start <= reading["sent_at"] <= end:
            continue
        candidates = opened.get((reading["sensor"], "temperature-high"), [])
        onset = reading["ts"] - args.alarm_delay_s
        match = next(
            (e for e in candidates if abs(_epoch(e["started_at"]) - onset) < args.interval / 2),
            None,
        )
        if match is None:
            missing += 1
            continue
        from_receipt.append(match["received"] - _epoch(match["opened_at"]))
        from_send.append(match["received"] - reading["sent_at"])
    per_second = {int(k): v for k, v in sensors.get("accepted_per_second", {}).items()}
    measured = [v for k, v in per_second.items() if args.warmup <= k < args.warmup + args.duration]
    rssi_seconds = {
        int(k): v
        for k, v in gen.get("seconds", {}).items()
        if args.warmup <= int(k) < args.warmup + args.duration
    }
    acknowledged = len(sensors.get("acknowledged", []))
    return {
        "sensors": args.sensors,
        "interval_s": args.interval,
        "offered_env_per_s": round(args.sensors / args.interval, 1),
        "env_accepted_per_s": round(sum(measured) / args.duration, 1),
        "env_requests": sensors.get("sent", 0),
        "env_statuses": sensors.get("statuses", {}),
        "env_request_ms": percentiles(sensors.get("request_ms", [])),
        "rssi_offered_per_s": round(
            sum(b.get("offered", 0) for b in rssi_seconds.values()) / args.duration, 1
        ),
        "rssi_accepted_per_s": round(
            sum(b.get("accepted", 0) for b in rssi_seconds.values()) / args.duration, 1
        ),
        "rssi_refused": sum(b.get("refused", 0) for b in rssi_seconds.values()),
        "rssi_errors": sum(b.get("errors", 0) for b in rssi_seconds.values()),
        "alerts_expected": len(from_receipt) + missing,
        "alerts_missing": missing,
        "latency_receipt_to_ws_s": _rounded(percentiles(sorted(from_receipt))),
        "latency_send_to_ws_s": _rounded(percentiles(sorted(from_send))),
        "console_events": len(console.get("events", [])),
        "console_reconnects": console.get("stats", {}).get("reconnects"),
        "readings_acknowledged": acknowledged,
        "readings_stored": stored,
        "readings_lost": lost,
        "stored_but_unanswered": stored - (acknowledged - lost),
        "refused_or_failed_requests": sensors.get("refused", 0) + sensors.get("errors", 0),
        "processes": processes,
    }


def _rounded(figures: dict) -> dict:
    return {k: (round(v, 3) if k != "count" else v) for k, v in figures.items()}


def run(args: argparse.Namespace) -> dict:
    env = load.stack_env(args)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "DEBUG", "LOG_LEVEL")})
    os.environ.update({item.partition("=")[0]: item.partition("=")[2] for item in args.env})
    os.environ.pop("WARDWISE_PRODUCTION", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hospital.settings")
    t0 = time.time()
    print("preparing database, Redis, the site and the sensors ...", flush=True)
    prepared = prepare(args)
    from tracking import bus

    print(f"  prepared in {time.time() - t0:.0f} s: {len(prepared['sensors'])} sensors, "
          f"{len(prepared['scanners'])} scanners, {args.tags} tags", flush=True)  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="wardwise-coldchain-"))
    stack = load.Stack(args, workdir)
    try:
        stack.start()
        stack.wait_ready(bus.client())
        print(f"  stack ready (logs in {workdir})", flush=True)
        sampler = Sampler(
            stack.server_groups()
            + [
                Group(name, root=process.pid)
                for name, process in stack.processes.items()
                if name.startswith("worker")
            ]
            + [Group("postgresql", comm="postgres"), Group("redis", comm="redis-server")]
        )
        run_id = uuid.uuid4().hex[:8]
        spawned = spawn_load(stack, prepared, args, run_id)
        print(f"  load: {args.sensors} sensors every {args.interval:g} s, {args.rssi_rate} RSSI "
              f"readings/s; warm-up {args.warmup:.0f} s, measure {args.duration:.0f} s",
              flush=True)  # fmt: skip
        result = measure(args, stack, sampler, spawned, run_id)
    finally:
        stack.stop()
    return {
        "label": args.label,
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": "python -m bench.coldchain " + " ".join(sys.argv[1:]),
        "machine": load.machine(),
        "config": {
            "server": args.server,
            "web_processes": args.web_procs,
            "http_threads": args.http_threads,
            "celery_workers": args.workers,
            "sensors": args.sensors,
            "interval_s": args.interval,
            "rssi_rate": args.rssi_rate,
            "tags": args.tags,
            "alarm_delay_s": args.alarm_delay_s,
            "excursion_one_in": args.excursion_one_in,
            "excursion_every_s": args.excursion_every,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "env": args.env,
        },
        "result": result,
    }


def print_report(report: dict) -> None:
    r = report["result"]
    lat, send = r["latency_receipt_to_ws_s"], r["latency_send_to_ws_s"]
    print(
        f"  => environmental readings: offered {r['offered_env_per_s']}/s, accepted "
        f"{r['env_accepted_per_s']}/s (request p50/p99 {r['env_request_ms'].get('p50', 0):.0f}/"
        f"{r['env_request_ms'].get('p99', 0):.0f} ms); RSSI offered {r['rssi_offered_per_s']}/s, "
        f"accepted {r['rssi_accepted_per_s']}/s\n"
        f"     alert latency receipt -> websocket p50/p99/max {lat.get('p50')}/{lat.get('p99')}/"
        f"{lat.get('max')} s (n={lat.get('count')}); send -> websocket p50/p99 {send.get('p50')}/"
        f"{send.get('p99')} s; alerts missing {r['alerts_missing']} of {r['alerts_expected']}\n"
        f"     readings acknowledged {r['readings_acknowledged']}, stored {r['readings_stored']}, "
        f"lost {r['readings_lost']}; refused or failed requests "
        f"{r['refused_or_failed_requests']}",
        flush=True,
    )
    for name, figures in r["processes"].items():
        print(
            f"     {name:<34} cpu {figures['cpu_pct']:6.1f} %  rss {figures['rss_mb_max']:8.1f} MB"
        )


def markdown(all_results: dict) -> str:
    lines = [
        "# Cold-chain benchmark results",
        "",
        "Written by `python -m bench.coldchain` (what the figures mean: docs/cold-chain.md).",
        "",
    ]
    for label, report in all_results.items():
        r, config, host = report["result"], report["config"], report["machine"]
        lat, send = r["latency_receipt_to_ws_s"], r["latency_send_to_ws_s"]
        lines += [
            f"## {label}",
            "",
            f"`{report['command']}` at {report['when']}; {host['cpus']} CPUs ({host['cpu_model']}),"
            f" load average at the end of the run {' '.join(host['load_average'])}; "
            f"{_servers(config)}, "
            f"{config['celery_workers']} Celery workers; "
            f"{config['duration_s']:.0f} s measured after {config['warmup_s']:.0f} s warm-up.",
            "",
            "| figure | value |",
            "|---|---|",
            f"| environmental readings offered / accepted per s | {r['offered_env_per_s']} / "
            f"{r['env_accepted_per_s']} |",
            f"| environmental request p50 / p99 (ms) | {r['env_request_ms'].get('p50', 0):.0f} / "
            f"{r['env_request_ms'].get('p99', 0):.0f} |",
            f"| RSSI readings offered / accepted per s | {r['rssi_offered_per_s']} / "
            f"{r['rssi_accepted_per_s']} |",
            f"| alert latency, receipt -> websocket, p50 / p99 / max (s) | {lat.get('p50')} / "
            f"{lat.get('p99')} / {lat.get('max')} (n={lat.get('count')}) |",
            f"| alert latency, probe send -> websocket, p50 / p99 (s) | {send.get('p50')} / "
            f"{send.get('p99')} |",
            f"| alerts missing on the console | {r['alerts_missing']} of {r['alerts_expected']} "
            f"(console reconnects: {r.get('console_reconnects')}) |",
            f"| readings acknowledged (2xx) / stored / lost | {r['readings_acknowledged']} / "
            f"{r['readings_stored']} / {r['readings_lost']} |",
            f"| stored, but the probe got no 2xx (timed out; it would resend) | "
            f"{r.get('stored_but_unanswered')} |",
            f"| refused or failed requests | {r['refused_or_failed_requests']} "
            f"({r['env_statuses']}) |",
            "",
            "| process | CPU % (100 = one core) | RSS MB |",
            "|---|---|---|",
        ]
        for name, figures in r["processes"].items():
            lines.append(f"| {name} | {figures['cpu_pct']} | {figures['rss_mb_max']} |")
        lines.append("")
    return "\n".join(lines)


def _servers(config: dict) -> str:
    if config["server"] != "gunicorn":
        return f"{config['server']} x{config['web_processes']}"
    threads = config.get("http_threads", 1)
    workers = "sync workers" if threads <= 1 else f"workers x {threads} threads"
    return f"gunicorn x{config['web_processes']} {workers} (HTTP) + uvicorn x1 (websockets)"


def save(report: dict) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / "coldchain.json"
    all_results = json.loads(path.read_text()) if path.exists() else {}
    all_results[report["label"]] = report
    path.write_text(json.dumps(all_results, indent=1) + "\n")
    (RESULTS_DIR / "coldchain.md").write_text(markdown(all_results))
    print(f"results in {path} and {RESULTS_DIR / 'coldchain.md'}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report = run(args)
    print_report(report)
    save(report)


if __name__ == "__main__":
    main()
