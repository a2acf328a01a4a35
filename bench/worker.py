"""Worker capacity: readings a pipeline worker turns into positions per CPU-second.

    python -m bench.worker                                  # 10,000 readings/s for 2 x 10 s
    python -m bench.worker --engine quiet_solve_max_s=6     # the same with an engine option,
                                                            # compared with the defaults in one run
    python -m bench.worker --drain-every 0.5                # the live regime: every shard drained
                                                            # each 0.5 s of event time
    python -m bench.worker --compare-env WARDWISE_GC_THRESHOLDS=off   # defaults vs a setting

The end-to-end benchmark (bench.load) measures the whole stack; this one isolates the worker,
which is where the localization engine runs. It prepares the same hospital as bench.load
(PostgreSQL database `wardwise_bench`, Redis database 7, 10,000 tagged assets, 250 scanners),
fills the shard streams with simulated gateway batches (bench.loadgen's radio links: each tag heard
by its 6 nearest scanners, at the offered rate), lets `tracking.pipeline.process_shard` warm up on
the first half (tag states created, locations and stays written) and then times the second half:
CPU seconds of this process (not wall time, so other load on the machine distorts it less; the
PostgreSQL and Redis servers' CPU is not included) per reading applied and per position, and the
wall time of a shard's drain, which adds the waits for PostgreSQL and Redis to its CPU.
The default drains the timed half at once (a backlog: the worker's best case); `--drain-every`
drains as a live worker does, a little of every tag each round, which costs more per reading.

Each configuration runs on a fresh database and Redis, in its own subprocess, in the same run, so
the ratio between them is the figure to trust. Results go to bench/results/worker.json and .md.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.load import machine, save_results, stack_env

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=10_000, help="readings/s of event time")
    parser.add_argument("--seconds", type=int, default=10, help="seconds warmed, then timed")
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--floors", type=int, default=5)
    parser.add_argument("--rooms-per-side", type=int, default=25)
    parser.add_argument(
        "--drain-every",
        type=float,
        default=0.0,
        metavar="S",
        help="time the live regime instead: gateways' batches arrive in send-time order and every "
        "shard is drained each S seconds of event time (default: one drain of the whole half)",
    )
    parser.add_argument(
        "--engine",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="EngineConfig number for the compared run (the baseline keeps the defaults)",
    )
    parser.add_argument(
        "--compare-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="environment variable of the compared run (with --engine: both in one compared run)",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child: run one configuration
    return parser.parse_args(argv)


class CollectorClock:
    """CPU seconds the garbage collector spends while `timing` is set, and its full collections."""

    def __init__(self) -> None:
        self.timing = False
        self.seconds = 0.0
        self.full_collections = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if not self.timing:
            return
        if phase == "start":
            self._started = time.process_time()
            return
        self.seconds += time.process_time() - self._started
        self.full_collections += info["generation"] == 2


def child(args: argparse.Namespace) -> dict:
    """One configuration, in this process: prepare, fill, warm, time."""
    from bench.load import BENCH_DB, REDIS_DB, prepare

    args.env, args.bench_db, args.redis_db = [], BENCH_DB, REDIS_DB
    prepared = prepare(args)
    import numpy as np
    from django.conf import settings

    from hospital import gc_tuning
    from tracking import bus, pipeline
    from tracking.ingestion import RssiReading

    options = json.loads(args.one)
    default_config = pipeline.engine_config
    pipeline.engine_config = lambda: dataclasses.replace(default_config(), **options)
    gc_tuning.tune(settings.WARDWISE["GC_THRESHOLDS"])  # as tracking.tasks does at worker start
    collector = CollectorClock()
    gc.callbacks.append(collector)

    links = prepared["links"]
    link_count = sum(len(tags) for tags, _ in links.values())
    probability = min(1.0, args.rate / link_count)
    rng = np.random.default_rng(3)
    start = time.time() - 2 * args.seconds - 10

    def batches(second: int) -> list[tuple[float, str, list[RssiReading]]]:
        """One second of every gateway's batch, at a fixed phase per gateway, in send order."""
        sent = []
        for phase, (serial, (tags, means)) in enumerate(sorted(links.items())):
            heard = np.nonzero(rng.random(len(tags)) < probability)[0]
            stamp = start + second + phase / len(links)
            noise = rng.normal(0.0, 4.0, len(heard))
            readings = [
                RssiReading(stamp, tags[i], float(round(means[i] + n)))
                for i, n in zip(heard, noise, strict=True)
            ]
            sent.append((stamp, serial, readings))
        return sent

    def publish(sent: list[tuple[float, str, list[RssiReading]]]) -> int:
        for stamp, serial, readings in sent:
            bus.publish(serial, readings, stamp)
        return sum(len(readings) for _, _, readings in sent)

    def drain(now: float) -> tuple[int, int]:
        applied = estimates = 0
        for shard in range(bus.shard_count()):
            while True:  # a drain stops after its time slice (pipeline.DRAIN_SLICE_S)
                report = pipeline.process_shard(shard, now=now)
                applied += report.applied
                estimates += report.estimates
                if not pipeline.has_unprocessed(shard):
                    break
        return applied, estimates

    def timed_live(seconds: range, every: float) -> tuple[int, int, int, float, float, int]:
        """Publish up to each tick's event time, then drain every shard as of that time; only
        the drains are timed (publishing is the HTTP tier's work)."""
        pending = [batch for second in seconds for batch in batches(second)]
        published = applied = estimates = ticks = 0
        cpu = wall = 0.0
        tick = start + seconds.start + every
        while pending or tick <= start + seconds.stop + 1.0:
            due = [batch for batch in pending if batch[0] < tick]
            pending = pending[len(due) :]
            published += publish(due)
            began, began_wall = time.process_time(), time.perf_counter()
            collector.timing = True
            done = drain(tick)
            collector.timing = False
            cpu += time.process_time() - began
            wall += time.perf_counter() - began_wall
            applied, estimates, ticks = applied + done[0], estimates + done[1], ticks + 1
            tick += every
        return published, applied, estimates, cpu, wall, ticks

    pipeline.site_runtime()
    publish([batch for second in range(args.seconds) for batch in batches(second)])
    drain(start + args.seconds + 0.1)
    timed = range(args.seconds, 2 * args.seconds)
    if args.drain_every > 0:
        published, applied, estimates, cpu, wall, drains = timed_live(timed, args.drain_every)
    else:
        published = publish([batch for second in timed for batch in batches(second)])
        cpu, wall = time.process_time(), time.perf_counter()
        collector.timing = True
        applied, estimates = drain(time.time() + 60)
        collector.timing = False
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        drains = 1
    return {
        "engine_options": options,
        "drain_every_s": args.drain_every,
        "shard_drains": drains * bus.shard_count(),
        "cpu_ms_per_shard_drain": round(1000 * cpu / (drains * bus.shard_count()), 2),
        "wall_ms_per_shard_drain": round(1000 * wall / (drains * bus.shard_count()), 2),
        "readings_published": published,
        "readings_applied": applied,
        "positions": estimates,
        "cpu_s": round(cpu, 2),
        "readings_per_cpu_s": round(applied / cpu),
        "cpu_us_per_position": round(1e6 * cpu / max(estimates, 1)),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "gc_cpu_s": round(collector.seconds, 2),
        "gc_full_collections": collector.full_collections,
    }


def run_one(args: argparse.Namespace, options: dict, env_overrides: list[str]) -> dict:
    env = stack_env(argparse.Namespace(env=["WARDWISE_SELF_CALIBRATION=false", *env_overrides]))
    command = [
        sys.executable, "-m", "bench.worker", "--one", json.dumps(options),
        "--rate", str(args.rate), "--seconds", str(args.seconds), "--tags", str(args.tags),
        "--floors", str(args.floors), "--rooms-per-side", str(args.rooms_per_side),
        "--drain-every", str(args.drain_every),
    ]  # fmt: skip
    done = subprocess.run(  # nosec B603
        command, cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"worker benchmark failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "env": env_overrides}


def configuration_labels(options: dict, env: list[str]) -> list[str]:
    return [f"{name}={value:g}" for name, value in options.items()] + env


def markdown(report: dict) -> str:
    lines = [
        "# Worker capacity",
        "",
        f"`{report['command']}` at {report['when']}; {report['machine']['cpus']} CPUs, load "
        f"average {' / '.join(report['machine']['load_average'])} at the start.",
        "",
        "| configuration | drained | readings applied | positions | CPU s | readings per CPU-s | "
        "CPU us per position | CPU ms per shard drain | wall ms per shard drain | "
        "of it GC s (full collections) | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        options = ", ".join(configuration_labels(run["engine_options"], run.get("env", [])))
        options = options or "defaults"
        every = run["drain_every_s"]
        drained = f"every {every:g} s" if every else "once"
        lines.append(
            f"| {options} | {drained} | {run['readings_applied']:,} | {run['positions']:,} | "
            f"{run['cpu_s']} | {run['readings_per_cpu_s']:,} | {run['cpu_us_per_position']:,} | "
            f"{run['cpu_ms_per_shard_drain']:,} | {run.get('wall_ms_per_shard_drain', '')} | "
            f"{run['gc_cpu_s']} ({run['gc_full_collections']}) | {run['peak_rss_mb']} |"
        )
    if len(report["runs"]) == 2:
        base, other = report["runs"]
        ratio = other["readings_per_cpu_s"] / base["readings_per_cpu_s"]
        lines += ["", f"Readings per CPU-second, compared run / defaults: {ratio:.2f}x."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.one is not None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hospital.settings")
        import django

        django.setup()
        print(json.dumps(child(args)))
        return
    options = {}
    for option in args.engine:
        name, _, value = option.partition("=")
        options[name] = float(value)
    report = {
        "command": "python -m bench.worker " + " ".join(sys.argv[1:] if argv is None else argv),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "runs": [],
    }
    compared = [(options, args.compare_env)] if options or args.compare_env else []
    for configuration, env in [({}, []), *compared]:
        labels = ", ".join(configuration_labels(configuration, env)) or "the defaults"
        print(f"running with {labels} ...", flush=True)
        report["runs"].append(run_one(args, configuration, env))
        print("  ", report["runs"][-1], flush=True)
    text = markdown(report)
    save_results("worker", report, text)
    print(text)


if __name__ == "__main__":
    main()
