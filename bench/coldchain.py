"""Cold-chain benchmark against the real stack on this machine (docs/cold-chain.md, "Benchmark").

    python -m bench.coldchain                   # 2,000 sensors every 10 s + 1,000 RSSI readings/s
    python -m bench.coldchain --rssi-rate 2000 --duration 300
    python -m bench.coldchain --quick           # 30 s smoke run with 500 sensors
    python -m bench.coldchain --upload-cost     # CPU of one upload in this process, no servers

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
- expected alerts: after the run, the readings stored in PostgreSQL are put through the documented
  rules again (`incidents`, written independently of environment.rules); every incident whose
  alarm condition was completed, in the server's order of arrival, by a reading received within
  the window is an expected alert (`account_alerts`);
- alert latency: for each expected alert delivered, from the receipt of the reading that completed
  its condition (that request's clock reading, stored as the reading's `received_at`) to the
  alert's `opened` event on the console, matched by alert id; also from the moment the probe sent
  that reading;
- missing alerts, each with its reason: never raised, raised as part of another incident's alert,
  raised then withdrawn, raised after the console closed, raised while the console was
  disconnected, raised but not delivered; and for the probes' planned excursions, why some gave
  no alarm at their planned reading (readings that timed out at the probe were not stored);
- lost readings: readings acknowledged with 202 minus the rows stored in PostgreSQL (must be 0).

Results: bench/results/coldchain.json and .md. Only 127.0.0.1 is contacted; every subprocess is
killed on exit, error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench import load
from bench.loadgen import percentiles
from bench.procstat import Group, Sampler

RESULTS_DIR = load.RESULTS_DIR
BENCH_DB = load.BENCH_DB + "_coldchain"
#: Database of `--upload-cost` (keeps the last stack run's database for inspection).
UPLOAD_DB = load.BENCH_DB + "_coldchain_upload"
#: Redis database of this benchmark (flushed); bench.load uses 7, tests 10-15.
REDIS_DB = int(os.environ.get("WARDWISE_BENCH_COLDCHAIN_REDIS_DB", "8"))
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
    parser.add_argument(
        "--probe-timeout",
        type=float,
        default=10.0,
        help="s a probe waits for an answer (a free connection included) before giving up",
    )
    parser.add_argument(
        "--probe-connections",
        type=int,
        default=400,
        help="HTTP connections the probes share (a probe past them waits for one)",
    )
    parser.add_argument(
        "--relay",
        action="store_true",
        help="sensors relayed by the RSSI gateways (each posts its sensors' readings of the last "
        "second in one batch, as the scanner agent does) instead of one request per reading",
    )
    load.add_server_arguments(parser, server="gunicorn", web_procs=2)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--floors", type=int, default=2)
    parser.add_argument("--rooms-per-side", type=int, default=20)
    parser.add_argument("--tags", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="30 s smoke run, 500 sensors")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the stack")
    parser.add_argument("--label", help="key of this run in coldchain.json")
    parser.add_argument(
        "--upload-cost",
        action="store_true",
        help="instead: CPU of one single-reading upload in this process (no servers)",
    )
    parser.add_argument(
        "--requests", type=int, default=2000, help="uploads per timed round (--upload-cost)"
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="timed rounds; the least CPU is the figure"
    )
    parser.add_argument("--profile", action="store_true", help="--upload-cost under cProfile")
    parser.add_argument("--profile-out", help="--profile: also write the pstats file here")
    parser.add_argument(
        "--out-of-order",
        action="store_true",
        help="--upload-cost: every other reading arrives after a newer one (a late reading)",
    )
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
        if args.server in load.SPLIT_SERVERS and args.http_threads > 1:
            args.label += f" threads={args.http_threads}"
        if args.env:
            args.label += " " + " ".join(args.env)
        if args.relay:
            args.label += " relayed"
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
    from tracking.models import Scanner

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
    gateways = list(Scanner.objects.order_by("serial")) if args.relay else []
    sensors = Sensor.objects.bulk_create(
        [
            Sensor(
                serial=f"bench-fridge-{index:05d}",
                kind="refrigerator",
                zone=zones[index % len(zones)],
                profile=profile,
                contents="Vaccines",
                expected_interval_s=int(args.interval),
                gateway=gateways[index % len(gateways)] if gateways else None,
            )
            for index in range(args.sensors)
        ]
    )
    if gateways:  # instead of a token, a relayed sensor's gateway: that posts with its own
        tokens = [(sensor.serial, sensor.gateway.serial) for sensor in sensors]
    else:
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
            "request_timeout_s": args.probe_timeout,
            "connections": args.probe_connections,
            "gateways": dict(prepared["scanners"]) if args.relay else None,
            "batch_s": 1.0,
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
    stored, alerts, limits = load_accounting_inputs()
    accounting = account_alerts(
        window=window,
        console_end=window[1] + args.drain,
        stored=stored,
        alerts=alerts,
        console=outputs.get("console", {}),
        attempts=outputs.get("sensors", {}).get("attempts", {}),
        limits={
            **limits,
            "interval_s": args.interval,
            "excursion_readings": args.excursion_readings,
        },
    )
    return summarize(
        args, window, outputs, stored_readings(), lost, sampler.summary(*window), accounting
    )


# --- alert accounting (docs/cold-chain.md, "Benchmark": what an expected alert is) ------------

DELIVERED = "delivered"
#: Why an expected alert did not reach the console as an `opened` event, in the order checked.
NEVER_RAISED = "never raised"
MERGED = "raised as part of another incident's alert"
WITHDRAWN = "raised, then withdrawn"
AFTER_WINDOW = "raised after the console closed"
WHILE_AWAY = "raised while the console was disconnected"
NOT_DELIVERED = "raised but not delivered"
MISSING_REASONS = (NEVER_RAISED, MERGED, WITHDRAWN, AFTER_WINDOW, WHILE_AWAY, NOT_DELIVERED)
#: Why a planned excursion (the probe's plan) did not alarm at its planned completing reading.
AT_PLANNED = "alarm at the planned reading"
CONTINUED = "continued the previous incident (its in-range readings not stored)"
LATE_START = "first bad reading not stored (condition starts later)"
LATE_ALARM = "planned completing reading not stored (alarm at a later reading)"
TOO_SHORT = "too few of its readings stored to last the alarm delay"
#: Slack for comparing timestamps that went through PostgreSQL (microseconds) and JSON.
TS_SLACK = 0.002


def incidents(points, max_c: float, delay_s: float, hysteresis_s: float) -> list[dict]:
    """The `temperature-high` incidents the documented rules give for one sensor's readings
    (docs/cold-chain.md, "Rule semantics"), written out again here so that the benchmark checks
    the product instead of trusting it. `points`: (ts, temperature) in ts order. An incident
    starts at the first reading above `max_c`, is raised at the first reading still above it at
    least `delay_s` later (only readings above it in between), ends at the first reading back in
    range and clears once readings stayed in range for `hysteresis_s`; a bad reading before
    that continues it."""
    found: list[dict] = []
    onset = current = clear_since = None
    for ts, temperature in points:
        if temperature > max_c:
            clear_since = None
            if current is not None:
                current["end"] = None
                current["last_bad"] = ts
                continue
            onset = ts if onset is None else onset
            if ts - onset >= delay_s:
                current = {
                    "start": onset,
                    "alarm": ts,
                    "last_bad": ts,
                    "end": None,
                    "cleared": None,
                }
                found.append(current)
            continue
        if current is None:
            onset = None
            continue
        if clear_since is None:
            clear_since = current["end"] = ts
        if ts - clear_since >= hysteresis_s:
            current["cleared"] = ts
            current = onset = clear_since = None
    return found


def completions(readings, found: list[dict], max_c, delay_s, hysteresis_s) -> None:
    """Set each incident's `completed_by`: the stored reading (id, ts, received) whose arrival
    made the readings the server had by then satisfy the alarm condition of this incident (an
    incident raised within its bad run). `readings`: (id, ts, temperature, received) of one
    sensor; arrival order is id order (ids follow commit order per sensor)."""
    pending = list(found)
    arrived: list[tuple[float, float]] = []
    for row in sorted(readings):
        if not pending:
            return
        arrived.append((row[1], row[2]))
        arrived.sort()
        seen = incidents(arrived, max_c, delay_s, hysteresis_s)
        for incident in list(pending):
            low, high = incident["start"] - TS_SLACK, incident["last_bad"] + TS_SLACK
            if any(low <= other["alarm"] <= high for other in seen):
                incident["completed_by"] = row
                pending.remove(incident)


def _period(start: float, end: float | None) -> tuple[float, float]:
    return start, end if end is not None else float("inf")


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] + TS_SLACK and b[0] <= a[1] + TS_SLACK


def account_alerts(
    *,
    window: tuple[float, float],
    console_end: float,
    stored: dict[str, list],
    alerts: list[dict],
    console: dict,
    attempts: dict[str, list],
    limits: dict,
) -> dict:
    """Every expected alert of the run, delivered or missing with the reason, its latency, and
    why planned excursions gave no alert at their planned reading.

    `stored`: serial -> [(id, ts, temperature, received)] from PostgreSQL; `alerts`: the
    environment alerts ({id, sensor, kind, started_at, ended_at, opened_at, withdrawn}, epoch
    seconds); `console`: bench.coldchaingen's console output; `attempts`: the probes' attempts
    of excursion sensors; `limits`: max_c, delay_s, hysteresis_s, interval_s,
    excursion_readings."""
    start, end = window
    max_c, delay, hysteresis = limits["max_c"], limits["delay_s"], limits["hysteresis_s"]
    opened_events: dict[int, float] = {}
    for event in console.get("events", []):
        if event["event"] == "opened" and event.get("id") is not None:
            opened_events.setdefault(event["id"], event["received"])
    connected = [
        (opened, closed if closed is not None else console_end)
        for opened, closed in console.get("stats", {}).get("connected", [])
    ]
    sent = {(serial, round(a[0], 3)): a[1] for serial, rows in attempts.items() for a in rows}
    by_sensor: dict[str, list[dict]] = {}
    for alert in alerts:
        by_sensor.setdefault(alert["sensor"], []).append(alert)
    reasons = dict.fromkeys((DELIVERED, *MISSING_REASONS), 0)
    from_receipt, from_send, from_reading, raised_late, early = [], [], [], [], 0
    claimed: set[int] = set()
    oracle: dict[str, list[dict]] = {}
    expected = completed_outside = 0
    for serial in sorted(set(stored) | set(by_sensor)):
        rows = sorted(stored.get(serial, []), key=lambda r: r[1])
        found = incidents([(r[1], r[2]) for r in rows], max_c, delay, hysteresis)
        oracle[serial] = found
        completions(rows, found, max_c, delay, hysteresis)
        own = sorted(
            (a for a in by_sensor.get(serial, []) if a["kind"] == "temperature-high"),
            key=lambda a: a["started_at"],
        )
        for incident in found:
            period = _period(incident["start"], incident["end"])
            overlapping = [
                a for a in own if _overlap(period, _period(a["started_at"], a["ended_at"]))
            ]
            exact = [a for a in overlapping if abs(a["started_at"] - incident["start"]) < TS_SLACK]
            exact.sort(key=lambda a: a["withdrawn"])
            alert = (exact or overlapping or [None])[0]
            merged = alert is not None and alert["id"] in claimed
            if alert is not None:
                claimed.add(alert["id"])
            _, _, _, completed_at = incident["completed_by"]
            if not start <= completed_at <= end:
                completed_outside += 1
                continue
            expected += 1
            if alert is None:
                reasons[NEVER_RAISED] += 1
                continue
            if merged or not exact:
                reasons[MERGED] += 1
                continue
            if alert["withdrawn"]:  # the rules call for it: withdrawing it was wrong
                reasons[WITHDRAWN] += 1
                continue
            if alert["opened_at"] - completed_at > 1.0:
                raised_late.append(alert["opened_at"] - completed_at)
            early += alert["opened_at"] < completed_at - TS_SLACK
            received = opened_events.get(alert["id"])
            if received is not None:
                reasons[DELIVERED] += 1
                from_receipt.append(received - completed_at)
                from_reading.append(received - incident["completed_by"][1])
                sent_at = sent.get((serial, round(incident["completed_by"][1], 3)))
                if sent_at is not None:
                    from_send.append(received - sent_at)
            elif alert["opened_at"] > console_end:
                reasons[AFTER_WINDOW] += 1
            elif not any(a <= alert["opened_at"] <= b for a, b in connected):
                reasons[WHILE_AWAY] += 1
            else:
                reasons[NOT_DELIVERED] += 1
    others = [a for a in alerts if a["id"] not in claimed]
    missing = {reason: n for reason, n in reasons.items() if reason != DELIVERED and n}
    return {
        "alerts_expected": expected,
        "alerts_delivered": reasons[DELIVERED],
        "alerts_missing": expected - reasons[DELIVERED],
        "alerts_missing_by_reason": missing,
        "alerts_completed_outside_window": completed_outside,
        "alerts_raised_late": {
            "count": len(raised_late),
            "max_s": round(max(raised_late), 3) if raised_late else None,
        },
        "alerts_opened_before_complete": early,
        "alerts_withdrawn_unmatched": sum(1 for a in others if a["withdrawn"]),
        "alerts_unexpected": sum(1 for a in others if not a["withdrawn"]),
        "latency_receipt_to_ws_s": _rounded(percentiles(sorted(from_receipt))),
        "latency_send_to_ws_s": _rounded(percentiles(sorted(from_send))),
        "latency_reading_to_ws_s": _rounded(percentiles(sorted(from_reading))),
        "planned_excursions": planned_excursions(window, attempts, oracle, limits),
    }


def planned_excursions(window, attempts: dict[str, list], oracle: dict, limits: dict) -> dict:
    """The probes' planned excursions whose completing reading was sent in the window: how
    many were answered 202 (the old accounting's "expected"), and what the stored readings made
    of them (an alarm at the planned reading, or why not)."""
    start, end = window
    interval, delay = limits["interval_s"], limits["delay_s"]
    bad_for = limits["excursion_readings"] * interval
    plans: dict[tuple[str, float], dict] = {}
    for serial, rows in attempts.items():
        for ts, sent_at, _answered, outcome, step in rows:
            if step is None:
                continue
            onset = round(ts - step * interval, 3)
            plan = plans.setdefault((serial, onset), {"completing": None})
            if abs(step * interval - delay) < TS_SLACK:
                plan["completing"] = (sent_at, outcome)
    tally: dict[str, dict[str, int]] = {}
    for (serial, onset), plan in plans.items():
        if plan["completing"] is None or not start <= plan["completing"][0] <= end:
            continue
        answered = "answered 202" if plan["completing"][1] == "202" else "not answered 2xx"
        reason = TOO_SHORT
        for incident in oracle.get(serial, []):
            cleared = incident["cleared"] if incident["cleared"] is not None else float("inf")
            if abs(incident["start"] - onset) < TS_SLACK:
                on_time = abs(incident["alarm"] - (onset + delay)) < TS_SLACK
                reason = AT_PLANNED if on_time else LATE_ALARM
                break
            if incident["start"] < onset and onset <= cleared + TS_SLACK:
                reason = CONTINUED
                break
            if onset < incident["start"] < onset + bad_for:
                reason = LATE_START
                break
        bucket = tally.setdefault(answered, {})
        bucket[reason] = bucket.get(reason, 0) + 1
    return tally


def load_accounting_inputs() -> tuple[dict, list[dict], dict]:
    """The stored readings and environment alerts of the run, and the profile's limits."""
    from alerts.models import Alert
    from environment.models import EnvironmentReading, ThresholdProfile

    stored: dict[str, list] = {}
    rows = EnvironmentReading.objects.values_list(
        "sensor__serial", "id", "ts", "temperature_c", "received_at"
    )
    for serial, pk, ts, temperature, received in rows.iterator(chunk_size=10000):
        if temperature is not None:
            stored.setdefault(serial, []).append(
                (pk, ts.timestamp(), temperature, received.timestamp())
            )
    alerts = [
        {
            "id": a.pk,
            "sensor": a.sensor.serial if a.sensor_id else None,
            "kind": a.kind,
            "started_at": a.started_at.timestamp(),
            "ended_at": a.ended_at.timestamp() if a.ended_at else None,
            "opened_at": a.opened_at.timestamp(),
            "withdrawn": bool(a.details.get("withdrawn")),
        }
        for a in Alert.objects.filter(source="environment").select_related("sensor")
    ]
    profile = ThresholdProfile.objects.get(slug=PROFILE_SLUG)
    limits = {
        "max_c": profile.temperature_max_c,
        "delay_s": float(profile.alarm_delay_s),
        "hysteresis_s": float(profile.clear_hysteresis_s),
    }
    return stored, alerts, limits


def summarize(
    args, window, outputs: dict, stored: int, lost: int, processes: dict, accounting: dict
) -> dict:
    sensors = outputs.get("sensors", {})
    console = outputs.get("console", {})
    gen = outputs.get("gen", {})
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
        **accounting,
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
            "probe_timeout_s": args.probe_timeout,
            "probe_connections": args.probe_connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "env": args.env,
        },
        "result": result,
    }


def print_report(report: dict) -> None:
    r = report["result"]
    lat, send = r["latency_receipt_to_ws_s"], r["latency_send_to_ws_s"]
    taken = r.get("latency_reading_to_ws_s", {})
    print(
        f"  => environmental readings: offered {r['offered_env_per_s']}/s, accepted "
        f"{r['env_accepted_per_s']}/s (request p50/p99 {r['env_request_ms'].get('p50', 0):.0f}/"
        f"{r['env_request_ms'].get('p99', 0):.0f} ms); RSSI offered {r['rssi_offered_per_s']}/s, "
        f"accepted {r['rssi_accepted_per_s']}/s\n"
        f"     alert latency receipt -> websocket p50/p99/max {lat.get('p50')}/{lat.get('p99')}/"
        f"{lat.get('max')} s (n={lat.get('count')}); send -> websocket p50/p99 {send.get('p50')}/"
        f"{send.get('p99')} s; reading ts -> websocket p50/p99 {taken.get('p50')}/"
        f"{taken.get('p99')} s\n"
        f"     alerts missing {_missing(r)}\n"
        f"     planned excursions (completing reading sent in the window): {_planned(r)}\n"
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
        taken = r.get("latency_reading_to_ws_s", {})
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
            f"| alert latency, probe or gateway send -> websocket, p50 / p99 (s) | "
            f"{send.get('p50')} / {send.get('p99')} |",
            "| alert latency, the reading's own timestamp -> websocket, p50 / p99 (s) | "
            + (
                f"{taken.get('p50')} / {taken.get('p99')} |"
                if "latency_reading_to_ws_s" in r
                else "not measured |"
            ),
            f"| expected alerts missing on the console | {_missing(r)} "
            f"(console reconnects: {r.get('console_reconnects')}) |",
            f"| alerts raised more than 1 s after the completing reading's receipt / unexpected "
            f"alerts | {_late_and_unexpected(r)} |",
            f"| planned excursions, completing reading sent in the window | {_planned(r)} |",
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


def _missing(r: dict) -> str:
    text = f"{r['alerts_missing']} of {r['alerts_expected']}"
    if "alerts_missing_by_reason" not in r:
        return text + " (before the exact accounting: see docs/cold-chain.md)"
    reasons = ", ".join(f"{n} {reason}" for reason, n in r["alerts_missing_by_reason"].items())
    return text + (f": {reasons}" if reasons else "")


def _late_and_unexpected(r: dict) -> str:
    if "alerts_raised_late" not in r:
        return "not measured"
    late = r["alerts_raised_late"]
    text = f"{late['count']}"
    if late["count"]:
        text += f" (at most {late['max_s']} s)"
    return text + f" / {r['alerts_unexpected']}"


def _planned(r: dict) -> str:
    plans = r.get("planned_excursions")
    if plans is None:
        return "not recorded"
    parts = []
    for answered, reasons in sorted(plans.items()):
        detail = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
        parts.append(f"{sum(reasons.values())} {answered} ({detail})")
    return "; ".join(parts) or "none"


def _servers(config: dict) -> str:
    server = config["server"]
    if server not in load.SPLIT_SERVERS:
        return f"{server} x{config['web_processes']}"
    threads = config.get("http_threads", 1)
    workers = "sync workers" if threads <= 1 else f"workers x {threads} threads"
    return f"{server} x{config['web_processes']} {workers} (HTTP) + uvicorn x1 (websockets)"


def save(report: dict) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / "coldchain.json"
    all_results = json.loads(path.read_text()) if path.exists() else {}
    all_results[report["label"]] = report
    path.write_text(json.dumps(all_results, indent=1) + "\n")
    (RESULTS_DIR / "coldchain.md").write_text(markdown(all_results))
    print(f"results in {path} and {RESULTS_DIR / 'coldchain.md'}")


def upload_cost(args: argparse.Namespace) -> dict:
    """CPU of the web process per single-reading upload (CONTRACT.md section 4), measured in
    this process through the application gunicorn runs (hospital.device_wsgi, called as a WSGI
    server calls it: one environ per request, the response iterated and closed): its
    middleware, device-token authentication, the rate limit, validation, storing and
    evaluating, the database connection taken from and given back to the pool per request
    (request_started / request_finished), minus the socket and gunicorn's HTTP parsing. A
    fresh database `wardwise_bench_coldchain_upload` with `--sensors` sensors (at most 500) of
    the benchmark's profile, Redis database 8 (flushed: rate limit, revocation epoch).
    Every sensor uploads once first (its token verified, its state row created), then each posts
    in turn, in-range values, as sensors reporting every few seconds do; PostgreSQL's and Redis's
    own CPU is not included. The figure is the least CPU per upload of `--rounds` rounds of
    `--requests` uploads (on a shared machine other work only ever adds to it). With
    `--out-of-order` every other reading arrives after its successor, as when an overloaded
    server answers after the probe gave up and the next reading overtakes it (the rules then
    replay the sensor's recent stored readings)."""
    import cProfile
    import pstats

    args.bench_db = UPLOAD_DB
    env = load.stack_env(args)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "DEBUG", "LOG_LEVEL")})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hospital.settings")
    load.recreate_database(UPLOAD_DB)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from environment.models import Sensor, ThresholdProfile
    from hospital.devices import issue_token
    from hospital.models import Zone
    from hospital.site_loader import load_site_document
    from tracking import bus
    from tracking.simulation.layout import generate_hospital

    bus.client().flushdb()
    call_command("migrate", verbosity=0)
    load_site_document(generate_hospital(floors=1, rooms_per_side=5, assets_per_floor=0))
    preset = ThresholdProfile.objects.get(slug="vaccine-refrigerator")
    preset.pk, preset.slug = None, PROFILE_SLUG
    preset.alarm_delay_s = preset.clear_hysteresis_s = int(2 * args.interval)
    preset.save()
    zone = Zone.objects.exclude(kind="corridor").first()
    count = min(args.sensors, 500)
    sensors = Sensor.objects.bulk_create(
        Sensor(
            serial=f"bench-fridge-{i:05d}",
            kind="refrigerator",
            zone=zone,
            profile=preset,
            expected_interval_s=int(args.interval),
        )
        for i in range(count)
    )
    tokens = [(s.serial, issue_token(sensor=s)) for s in sensors]
    application = device_application()
    start = time.time() - 3600

    def upload(index: int) -> int:
        serial, token = tokens[index % count]
        round_index = index // count
        if args.out_of_order and round_index:
            # Rounds 1 and 2, 3 and 4, ... swapped: every other reading arrives after a newer one.
            round_index += 1 if round_index % 2 else -1
        body = {
            "readings": [
                {
                    "sensor": serial,
                    "ts": round(start + round_index * args.interval + index % count * 0.001, 3),
                    "temperature_c": 5.5,
                    "battery_pct": 90,
                    "door_open": False,
                }
            ]
        }
        return wsgi_post(
            application, "/api/v1/readings/environment/", json.dumps(body).encode(), token
        )

    for index in range(count):
        upload(index)
    statements: list[str] = []

    def counting(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    statuses: dict[int, int] = {}

    def backends_cpu_s() -> float:
        """CPU seconds used so far by the PostgreSQL backends serving this database (only this
        process connects to it)."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            pids = [row[0] for row in cursor.fetchall()]
        connection.close()  # back to the pool, as after a request
        return sum(_process_cpu_s(pid) for pid in pids)

    def timed_uploads(first: int) -> tuple[float, float]:
        """One measured round (a function of its own, so that a sampling profiler can single it
        out: `py-spy record -- python -m bench.coldchain --upload-cost`): CPU seconds of this
        process and of its PostgreSQL backends."""
        database = backends_cpu_s()
        cpu = time.process_time()
        for index in range(first, first + args.requests):
            status = upload(index)
            statuses[status] = statuses.get(status, 0) + 1
        cpu = time.process_time() - cpu
        return cpu, backends_cpu_s() - database

    profiler = cProfile.Profile(time.process_time) if args.profile else None
    rounds = []
    with connection.execute_wrapper(counting):
        if profiler:
            profiler.enable()
        for round_index in range(args.rounds):
            rounds.append(timed_uploads(count + round_index * args.requests))
        if profiler:
            profiler.disable()
    if profiler:
        if args.profile_out:
            profiler.dump_stats(args.profile_out)
        for order in ("cumulative", "tottime"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(30)
            print(out.getvalue())
    per_request = sorted(1000 * cpu / args.requests for cpu, _ in rounds)
    database = sorted(1000 * cpu / args.requests for _, cpu in rounds)
    return {
        "requests": args.requests * args.rounds,
        "sensors": count,
        "statuses": statuses,
        "cpu_ms_per_request": round(per_request[0], 2),
        "cpu_ms_per_request_rounds": [round(ms, 2) for ms in per_request],
        "postgresql_cpu_ms_per_request": round(database[0], 2),
        "postgresql_cpu_ms_per_request_rounds": [round(ms, 2) for ms in database],
        "statements_per_request": round(len(statements) / (args.requests * args.rounds), 2),
        "profiled": bool(profiler),
    }


def _process_cpu_s(pid: int) -> float:
    """utime + stime of a process, from /proc (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def device_application():
    """The WSGI application gunicorn serves (`hospital.device_wsgi:application`)."""
    from hospital.device_wsgi import application

    return application


def wsgi_post(application, path: str, body: bytes, token: str) -> int:
    """POST `body` to `application` as a WSGI server does (gunicorn's environ keys, the answer
    read and closed, which fires request_finished: the database connection goes back to the
    pool as after a real request). Returns the status code."""
    statuses = []
    environ = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8100",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "HTTP_HOST": "127.0.0.1:8100",
        "HTTP_AUTHORIZATION": f"Token {token}",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    response = application(environ, lambda status, headers, exc_info=None: statuses.append(status))
    try:
        b"".join(response)
    finally:
        response.close()
    return int(statuses[0].split(" ", 1)[0])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.upload_cost:
        print(json.dumps(upload_cost(args)), flush=True)
        return
    report = run(args)
    print_report(report)
    save(report)


if __name__ == "__main__":
    main()
