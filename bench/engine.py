"""Engine alone: CPU of the localization engine per reading and per position, simulated trace.

    python -m bench.engine                      # 2 floors, 120 assets, 240 s of readings
    python -m bench.engine --readings 20000     # only the first 20,000 readings

No database, no Redis, no Django: the engine as a pipeline worker runs it (self-calibration off,
the pipeline's default), fed a seeded simulated hospital's readings (tracking.simulation) in
event-time order. It reports the best of `--repeats` runs in CPU time of this process, so other
load on the machine counts less; compare two revisions by running each in turn, more than once.
bench.worker measures the whole worker (Redis, PostgreSQL writes) on bench.load's hospital.

Seconds on a shared machine are noisy. Instructions are not: under
`valgrind --tool=callgrind` run it twice with `--repeats 1 --no-save` and two `--readings`
values; the difference of the two totals is the engine's own work on the readings between them,
without start-up and without loading the compiled code (docs/performance.md). It also prints a
SHA-256 digest of every estimate (tag, time, floor, zone, x, y, accuracy, zone probability): a
change meant to leave the engine's answers alone must leave the digest alone. It also reports a
tag's state as the workers write it to Redis after every chunk and read it back (bytes, and CPU
each way), packed and by name. Results go to bench/results/engine.json and .md.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import math
import sys
import time

import orjson

from bench.load import machine, save_results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--floors", type=int, default=2)
    parser.add_argument("--assets-per-floor", type=int, default=60)
    parser.add_argument("--duration", type=float, default=240.0, help="seconds of readings")
    parser.add_argument("--readings", type=int, help="use only the first N readings")
    parser.add_argument("--repeats", type=int, default=3, help="runs; the fastest counts")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-save", action="store_true")
    return parser.parse_args(argv)


def trace(args: argparse.Namespace):
    from tracking.localization import SiteSpec
    from tracking.simulation.layout import generate_hospital
    from tracking.simulation.radio import RadioConfig, RadioSimulator

    document = generate_hospital(
        floors=args.floors, assets_per_floor=args.assets_per_floor, seed=args.seed
    )
    simulator = RadioSimulator(document, RadioConfig(), seed=args.seed)
    readings, _truth = simulator.run(args.duration)
    if args.readings is not None:
        readings = readings[: args.readings]
    mobility = {state.tag: state.mobility for state in simulator.tags}
    return SiteSpec.from_document(document), readings, mobility


def measure(args: argparse.Namespace) -> dict:
    from tracking.localization import EngineConfig, LocalizationEngine

    site, readings, mobility = trace(args)
    best = None
    for _ in range(args.repeats):
        engine = LocalizationEngine(site, EngineConfig(self_calibration=False), mobility.get)
        produced = []
        started = time.process_time()
        for reading in readings:
            produced.extend(engine.process(reading))
        elapsed = time.process_time() - started
        best = elapsed if best is None else min(best, elapsed)
    estimates = len(produced)
    packed, named = state_cost(engine, packed=True), state_cost(engine, packed=False)
    return {
        "readings": len(readings),
        "estimates": estimates,
        "tags": len(mobility),
        "cpu_s": round(best, 3),
        "cpu_us_per_reading": round(1e6 * best / max(len(readings), 1), 1),
        "cpu_us_per_estimate": round(1e6 * best / max(estimates, 1), 1),
        "estimates_sha256": digest(produced),
        "state_bytes_per_tag": packed["bytes_per_tag"],
        "state_us_per_tag": packed["write_us_per_tag"],
        "state_read_us_per_tag": packed["read_us_per_tag"],
        "named_state": named,
    }


def state_cost(engine, packed: bool, rounds: int = 7, passes: int = 10) -> dict:
    """A tag's state at the end of the trace as a worker moves it through Redis (orjson, as
    tracking.pipeline does): mean bytes, CPU to export and serialise it, and CPU to parse and
    import it into a fresh engine, each the best of `rounds`, with the garbage collector paused
    (its passes over the heap are the worker's cost, not the format's; bench.worker has them).
    Packed is the workers' form; named the portable one."""
    tags = list(engine.tags)
    export, load = (
        (engine.export_packed, "import_packed") if packed else (engine.export_state, "import_state")
    )
    restore = getattr(type(engine)(engine.site, engine.config, engine.mobility_for_tag), load)
    gc.collect()
    gc.disable()
    try:
        return _state_rounds(tags, export, restore, rounds, passes)
    finally:
        gc.enable()


def _state_rounds(tags, export, restore, rounds: int, passes: int) -> dict:
    written = read = math.inf
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(passes):
            encoded = [orjson.dumps(export(tag)) for tag in tags]
        written = min(written, time.process_time() - started)
        started = time.process_time()
        for _ in range(passes):
            for tag, raw in zip(tags, encoded, strict=True):
                restore(tag, orjson.loads(raw))
        read = min(read, time.process_time() - started)
    count = max(len(tags), 1) * passes
    return {
        "bytes_per_tag": round(sum(map(len, encoded)) / max(len(tags), 1)),
        "write_us_per_tag": round(1e6 * written / count, 2),
        "read_us_per_tag": round(1e6 * read / count, 2),
    }


def named_state_line(result: dict) -> str:
    named = result.get("named_state")
    if not named:
        return ""
    return (
        f" By name (export_state), as before: {named['bytes_per_tag']:,} bytes, "
        f"{named['write_us_per_tag']} us and {named['read_us_per_tag']} us."
    )


def digest(estimates) -> str:
    """SHA-256 of the estimates' fields in order (floats by repr, so to the bit)."""
    hasher = hashlib.sha256()
    for e in estimates:
        fields = (e.tag, e.ts, e.floor, e.zone, e.x, e.y, e.accuracy_m, e.zone_probability)
        hasher.update(repr(fields).encode())
    return hasher.hexdigest()


def markdown(report: dict) -> str:
    result = report["result"]
    return "\n".join(
        [
            "# Localization engine alone",
            "",
            f"`{report['command']}` at {report['when']}; {report['machine']['cpus']} CPUs, load "
            f"average {' / '.join(report['machine']['load_average'])} at the start.",
            "",
            "| readings | estimates | tags | CPU s (best) | CPU us per reading | "
            "CPU us per estimate |",
            "|---|---|---|---|---|---|",
            f"| {result['readings']:,} | {result['estimates']:,} | {result['tags']} | "
            f"{result['cpu_s']} | {result['cpu_us_per_reading']} | "
            f"{result['cpu_us_per_estimate']} |",
            "",
            f"Estimates digest (SHA-256): `{result['estimates_sha256']}`",
            "",
            f"A tag's state as the workers write it after each chunk (packed): "
            f"{result['state_bytes_per_tag']:,} bytes, {result['state_us_per_tag']} us of CPU to "
            f"export and serialise, {result.get('state_read_us_per_tag', '?')} us to parse and "
            "import (mean over the tags at the end of the trace)." + named_state_line(result),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    report = {
        "command": " ".join(["python -m bench.engine", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine(),
        "result": measure(args),
    }
    report["when"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    text = markdown(report)
    print(text)
    if not args.no_save:
        save_results("engine", report, text)
    return report


if __name__ == "__main__":
    main()
