"""Ingestion cost: CPU of one RSSI batch through Django, the middleware and the view, no server.

    python -m bench.ingest                      # batches of 8, 40 and 80 readings
    python -m bench.ingest --sizes 40 --profile # and where the time goes (cProfile, top 25)

The end-to-end benchmark (bench.load) shows the HTTP tier's share of the machine; this one
isolates a request's own cost so a change to the request path can be judged in seconds. It
prepares the same hospital as bench.load (PostgreSQL database `wardwise_bench`, Redis database 7),
then posts gateway batches like bench.loadgen's (one batch id per request, ISO timestamps of
now, the scanner's own tags) through Django's test client, which runs the full middleware stack
and the view as gunicorn would, minus the socket. It reports CPU microseconds of this process per
request and per reading (PostgreSQL's and Redis's own CPU is not included) after a warm-up.
Results go to bench/results/ingest.json and .md.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time

from bench.load import machine, save_results, stack_env


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 40, 80])
    parser.add_argument("--requests", type=int, default=600, help="timed requests per size")
    parser.add_argument("--profile", action="store_true", help="print the top 25 functions")
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--floors", type=int, default=5)
    parser.add_argument("--rooms-per-side", type=int, default=25)
    return parser.parse_args(argv)


def batches(prepared: dict, size: int, count: int, run: str):
    """(token, body) pairs: each scanner in turn, `size` of its linked tags, unique batch ids."""
    from tracking.ingestion import format_timestamp

    scanners = prepared["scanners"]
    links = prepared["links"]
    for index in range(count):
        serial, token = scanners[index % len(scanners)]
        tags, means = links[serial]
        chosen = [
            (tags[(index + k) % len(tags)], means[(index + k) % len(tags)]) for k in range(size)
        ]
        stamp = format_timestamp(time.time())
        readings = [{"tag": tag, "rssi": round(mean), "ts": stamp} for tag, mean in chosen]
        body = json.dumps({"batch": f"{serial}-{run}-{size}-{index}", "readings": readings})
        yield token, body


def measure(client, prepared: dict, size: int, count: int, profiler=None) -> dict:
    run = str(time.time_ns())
    warm_up = len(prepared["scanners"])  # every scanner once: token caches, connections
    for token, body in batches(prepared, size, warm_up, run + "w"):
        client.post(
            "/api/v1/readings/rssi/", body, "application/json", HTTP_AUTHORIZATION=f"Token {token}"
        )
    work = list(batches(prepared, size, count, run))
    statuses: dict[int, int] = {}
    if profiler:
        profiler.enable()
    cpu = time.process_time()
    for token, body in work:
        response = client.post(
            "/api/v1/readings/rssi/", body, "application/json", HTTP_AUTHORIZATION=f"Token {token}"
        )
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    cpu = time.process_time() - cpu
    if profiler:
        profiler.disable()
    if set(statuses) != {202}:
        raise SystemExit(f"batches of {size} were not all accepted: {statuses}")
    return {
        "readings_per_batch": size,
        "requests": count,
        "statuses": statuses,
        "cpu_us_per_request": round(1e6 * cpu / count),
        "cpu_us_per_reading": round(1e6 * cpu / (count * size), 1),
        "readings_per_cpu_s": round(count * size / cpu),
    }


def markdown(report: dict) -> str:
    lines = [
        "# Ingestion request cost",
        "",
        f"`{report['command']}` at {report['when']}; {report['machine']['cpus']} CPUs, load "
        f"average {' / '.join(report['machine']['load_average'])} at the start.",
        "",
        "| readings per batch | requests | answers | CPU us per request | CPU us per reading | "
        "readings per CPU-s |",
        "|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        answers = ", ".join(f"{code}: {n}" for code, n in sorted(run["statuses"].items()))
        lines.append(
            f"| {run['readings_per_batch']} | {run['requests']:,} | {answers} | "
            f"{run['cpu_us_per_request']:,} | {run['cpu_us_per_reading']} | "
            f"{run['readings_per_cpu_s']:,} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.update(stack_env(argparse.Namespace(env=[])))
    from bench.load import prepare

    args.env = []
    prepared = prepare(args)
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    report = {
        "command": "python -m bench.ingest " + " ".join(sys.argv[1:] if argv is None else argv),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "runs": [],
    }
    for size in args.sizes:
        report["runs"].append(measure(client, prepared, size, args.requests, profiler))
        print("  ", report["runs"][-1], flush=True)
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        print(out.getvalue())
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())
        return  # a profiled run's figures carry the profiler's overhead: not saved
    text = markdown(report)
    save_results("ingest", report, text)
    print(text)


if __name__ == "__main__":
    main()
