"""Catch-up after an outage: how fast a gateway's spooled backlog reaches the server.

    python -m bench.catchup                    # an hour of 25 relayed sensors, each every 10 s
    python -m bench.catchup --outage-s 600     # ten minutes

The real stack of bench.coldchain (gunicorn, Celery workers, PostgreSQL, Redis), with no other
load. A gateway's spool (`scanners.spool.Spool`, on disk) is filled with the one-second batches its
relayed sensors' readings made during the outage, then drained by the scanner agent's own uploader
(`scanners.uploader.Uploader`) with the server's default rate limit in force: once one batch per
request (`max_upload_readings=1`, how the agent uploaded before it merged its backlog), once with
the agent's defaults, each with its own gateway and sensors, in the same run. Reports requests
(those answered `429` included), wall time, and readings stored, which must equal those spooled.
Results go to bench/results/catchup.json and .md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import coldchain, load

MODES = {"one batch per request": {"max_upload_readings": 1}, "agent defaults": {}}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outage-s", type=int, default=3600, help="seconds of spooled batches")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between readings")
    return parser.parse_args(argv)


class CountingClient:
    """The agent's HTTP client, counting requests and answers."""

    def __init__(self, client) -> None:
        self.client = client
        self.token_provider = client.token_provider
        self.statuses: dict[str, int] = {}

    def post_json(self, path: str, body: dict):
        response = self.client.post_json(path, body)
        key = str(response.status)
        self.statuses[key] = self.statuses.get(key, 0) + 1
        return response


def fill_spool(spool, serials: list[str], outage_s: int, interval_s: float, end: float) -> int:
    """One batch per second of the outage, holding the readings its sensors took in it; the
    sensors' phases are spread over the interval."""
    start = end - outage_s
    batches: dict[int, list[dict]] = {}
    for index, serial in enumerate(serials):
        taken = index * interval_s / len(serials)
        while taken < outage_s:
            moment = datetime.fromtimestamp(start + taken, tz=UTC)
            batches.setdefault(int(taken), []).append(
                {"sensor": serial, "ts": moment.isoformat(), "temperature_c": 4.5}
            )
            taken += interval_s
    for second in sorted(batches):
        spool.put("environment", batches[second])
    return sum(len(readings) for readings in batches.values())


def drain(gateway_token: str, base_url: str, spool, options: dict) -> dict:
    from scanners.uploader import HttpClient, Uploader

    logging.getLogger("scanners.uploader").setLevel(logging.ERROR)  # 429s are counted instead
    client = CountingClient(HttpClient(base_url, lambda: gateway_token, timeout_s=60.0))
    uploader = Uploader(spool, client, **options)
    started = time.monotonic()
    while spool.depth().batches:
        delay = uploader.step()
        if delay > 0:
            time.sleep(delay)
    return {
        "seconds": round(time.monotonic() - started, 2),
        "requests": sum(client.statuses.values()),
        "statuses": client.statuses,
        "counters": spool.counters(),
    }


def run(args: argparse.Namespace) -> dict:
    stack_args = coldchain.parse_args(["--relay", "--rssi-rate", "0"])
    env = load.stack_env(stack_args)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "DEBUG", "LOG_LEVEL")})
    os.environ.pop("WARDWISE_PRODUCTION", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hospital.settings")
    print("preparing database, Redis, the site and the sensors ...", flush=True)
    prepared = coldchain.prepare(stack_args)
    from django.db import connections

    from environment.models import EnvironmentReading
    from scanners.spool import Spool
    from tracking import bus

    members: dict[str, list[str]] = {}
    for serial, gateway in prepared["sensors"]:
        members.setdefault(gateway, []).append(serial)
    tokens = dict(prepared["scanners"])
    gateways = sorted(members)[: len(MODES)]
    workdir = Path(tempfile.mkdtemp(prefix="wardwise-catchup-"))
    stack = load.Stack(stack_args, workdir)
    results = {}
    try:
        stack.start()
        stack.wait_ready(bus.client())
        print(f"  stack ready (logs in {workdir})", flush=True)
        for (mode, options), gateway in zip(MODES.items(), gateways, strict=True):
            spool = Spool(workdir / f"spool-{gateway}.sqlite3", max_bytes=1024 * 1024 * 1024)
            spooled = fill_spool(spool, members[gateway], args.outage_s, args.interval, time.time())
            batches = spool.depth().batches
            outcome = drain(tokens[gateway], stack.http_url, spool, options)
            spool.close()
            stored = EnvironmentReading.objects.filter(sensor__gateway__serial=gateway).count()
            connections.close_all()
            results[mode] = {
                "gateway": gateway,
                "sensors": len(members[gateway]),
                "batches": batches,
                "readings": spooled,
                "stored": stored,
                **outcome,
            }
            print(f"  {mode}: {json.dumps(results[mode])}", flush=True)
    finally:
        stack.stop()
    return {
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": "python -m bench.catchup " + " ".join(sys.argv[1:]),
        "machine": load.machine(),
        "config": {"outage_s": args.outage_s, "interval_s": args.interval},
        "results": results,
    }


def markdown(report: dict) -> str:
    machine = report["machine"]
    lines = [
        "# Catch-up after an outage",
        "",
        f"`{report['command'].strip()}` at {report['when']}; {machine['cpus']} CPUs "
        f"({machine['cpu_model']}), load average {' / '.join(machine['load_average'])} at the "
        f"end; {report['config']['outage_s']} s of one gateway's spooled batches, drained by the "
        "scanner agent's uploader against the real stack with no other load.",
        "",
        "| upload | sensors | batches | readings | requests (answers) | seconds | stored |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, r in report["results"].items():
        answers = ", ".join(f"{n} x {status}" for status, n in sorted(r["statuses"].items()))
        lines.append(
            f"| {mode} | {r['sensors']} | {r['batches']:,} | {r['readings']:,} | "
            f"{r['requests']:,} ({answers}) | {r['seconds']:.1f} | {r['stored']:,} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    report = run(args)
    load.save_results("catchup", report, markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
