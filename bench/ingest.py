"""Ingestion cost: CPU of one RSSI batch through the WSGI application, no server.

    python -m bench.ingest                        # batches of 8, 40 and 80 readings
    python -m bench.ingest --sizes 40 --profile   # and where the time goes (cProfile, top 25)
    python -m bench.ingest --stacks device full --rounds 3   # the two applications, interleaved

The end-to-end benchmark (bench.load) shows the HTTP tier's share of the machine; this one
isolates a request's own cost so a change to the request path can be judged in seconds. It
prepares the same hospital as bench.load (PostgreSQL database `wardwise_bench`, Redis database 7,
or WARDWISE_BENCH_DB / WARDWISE_BENCH_REDIS_DB), then posts gateway batches like bench.loadgen's
(one batch id per request, ISO timestamps of now, the scanner's own tags) by calling a WSGI
application with the environ gunicorn would build, minus the socket: `device`
(hospital.device_wsgi, what the shipped gunicorn serves) or `full` (hospital.wsgi, the whole
site's middleware, what the ASGI servers run). It reports CPU microseconds of this process per
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

URL = "/api/v1/readings/rssi/"
APPLICATIONS = {"device": "hospital.device_wsgi", "full": "hospital.wsgi"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 40, 80])
    parser.add_argument("--requests", type=int, default=600, help="timed requests per size")
    parser.add_argument(
        "--stacks",
        nargs="+",
        choices=sorted(APPLICATIONS),
        default=["device"],
        help="WSGI applications to measure, in turn for each size",
    )
    parser.add_argument("--rounds", type=int, default=1, help="measurements per size and stack")
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


def environ(token: str, body: str) -> dict:
    """What gunicorn hands the application for a gateway's POST behind nginx."""
    data = body.encode()
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": URL,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8101",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Token {token}",
        "HTTP_X_FORWARDED_FOR": "10.20.0.7",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": io.BytesIO(data),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def call(application, token: str, body: str) -> int:
    """One request as a WSGI server makes it: the status, the body read, the response closed
    (Django's request_finished work runs there)."""
    status = []
    response = application(environ(token, body), lambda line, headers: status.append(line))
    try:
        b"".join(response)
    finally:
        response.close()
    return int(status[0].split(" ", 1)[0])


def measure(application, prepared: dict, size: int, count: int, profiler=None) -> dict:
    run = str(time.time_ns())
    warm_up = len(prepared["scanners"])  # every scanner once: token caches, connections
    for token, body in batches(prepared, size, warm_up, run + "w"):
        call(application, token, body)
    work = list(batches(prepared, size, count, run))
    statuses: dict[int, int] = {}
    if profiler:
        profiler.enable()
    cpu = time.process_time()
    for token, body in work:
        code = call(application, token, body)
        statuses[code] = statuses.get(code, 0) + 1
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
        "| application | readings per batch | requests | answers | CPU us per request | "
        "CPU us per reading | readings per CPU-s |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        answers = ", ".join(f"{code}: {n}" for code, n in sorted(run["statuses"].items()))
        lines.append(
            f"| {run['stack']} | {run['readings_per_batch']} | {run['requests']:,} | {answers} | "
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
    from importlib import import_module

    applications = {name: import_module(APPLICATIONS[name]).application for name in args.stacks}
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    report = {
        "command": "python -m bench.ingest " + " ".join(sys.argv[1:] if argv is None else argv),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "runs": [],
    }
    for size in args.sizes:
        for _ in range(args.rounds):
            for name, application in applications.items():
                run = measure(application, prepared, size, args.requests, profiler)
                report["runs"].append({"stack": name, **run})
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
