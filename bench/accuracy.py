"""Accuracy benchmark: our localization engine against three baselines on simulated hospitals.

    python -m bench.accuracy            # full run (several seeds per scenario), ~minutes
    python -m bench.accuracy --quick    # one seed

For every scenario and seed the radio simulator (tracking.simulation) writes a site, a trace CSV
and the ground truth; the engine replays the CSV exactly as `manage.py replay` does (CSV parsing
included in its readings/s), and the baselines (bench/baselines.py) run on the same readings.
Results are printed and saved to bench/results/accuracy.json and accuracy.md.

Metrics are sampled once per tag per advertisement against the truth at that moment, using each
method's latest estimate (so a slow or lagging method pays for it):

- median / p90 error (m), over samples where the floor is right;
- floor accuracy, room accuracy (estimated zone == true zone, wrong floor counts as wrong), also
  split into samples where the tag is parked and where it moved > 0.5 m in the last 5 s;
- coverage: share of samples having an estimate at most 10 s old;
- 1-sigma coverage: share of samples whose error is within the reported accuracy_m (target 68 %);
- readings/s: readings divided by the CPU time of this process (one core) spent replaying, CSV
  parsing and writing included for the engine; CPU time, not wall time, so that other load on the
  machine does not distort it;
- Cramer-Rao bound RMSE >= 0.46 (sigma/n) d / sqrt(N), with sigma the total per-reading spread,
  n the path-loss exponent, d the mean distance to the N scanners that hear an advertisement.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.baselines import BASELINES, Baseline
from tracking.localization import EngineConfig, LocalizationEngine, Reading, SiteSpec
from tracking.localization.replay import replay_file
from tracking.simulation.layout import generate_hospital
from tracking.simulation.radio import RadioConfig, RadioSimulator, write_trace

RESULTS_DIR = Path(__file__).resolve().parent / "results"
STALE_ESTIMATE_S = 10.0
WARM_UP_S = 10.0
MOTION_WINDOW_S = 5.0
MOTION_MIN_M = 0.5
METHODS = ("engine", *BASELINES)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    floors: int
    scanner_policy: str
    radio: RadioConfig
    assets_per_floor: int = 30


def scenarios() -> list[Scenario]:
    return [
        Scenario(
            "per-room-4dB",
            "one scanner per room, 4 dB shadowing, 20 % packet loss",
            1,
            "per-room",
            RadioConfig(shadowing_sigma_db=4.0, packet_loss=0.2),
        ),
        Scenario(
            "per-two-rooms-4dB",
            "one scanner per two rooms + corridor scanners, 4 dB shadowing",
            1,
            "per-two-rooms",
            RadioConfig(shadowing_sigma_db=4.0, packet_loss=0.2),
        ),
        Scenario(
            "harsh-7dB-50loss",
            "one scanner per room, 7 dB shadowing, 50 % packet loss",
            1,
            "per-room",
            RadioConfig(shadowing_sigma_db=7.0, packet_loss=0.5),
        ),
        Scenario(
            "two-floors",
            "two floors, one scanner per room, 4 dB, assets take the lift",
            2,
            "per-room",
            RadioConfig(shadowing_sigma_db=4.0, packet_loss=0.2, other_floor_probability=0.5),
            assets_per_floor=20,
        ),
    ]


def _truth_index(truth):
    by_tag: dict[str, list] = {}
    for row in truth:
        by_tag.setdefault(row.tag, []).append(row)
    return by_tag


def evaluate(site: SiteSpec, truth, estimates) -> dict[str, float]:
    """Score a method's estimates against the truth (see module docstring)."""
    by_tag: dict[str, list] = {}
    for estimate in estimates:
        by_tag.setdefault(estimate.tag, []).append(estimate)
    start = min(row.ts for row in truth) + WARM_UP_S
    errors, within, floor_ok, room_ok, covered, samples = [], [], 0, 0, 0, 0
    room_by_motion = {True: [0, 0], False: [0, 0]}  # moving?: [right room, covered]
    for tag, rows in _truth_index(truth).items():
        tag_estimates = sorted(by_tag.get(tag, []), key=lambda e: e.ts)
        times = np.array([e.ts for e in tag_estimates])
        truth_times = np.array([row.ts for row in rows])
        for row in rows:
            if row.ts < start:
                continue
            samples += 1
            i = int(np.searchsorted(times, row.ts, side="right")) - 1
            if i < 0 or row.ts - times[i] > STALE_ESTIMATE_S:
                continue
            covered += 1
            estimate = tag_estimates[i]
            earlier = rows[max(int(np.searchsorted(truth_times, row.ts - MOTION_WINDOW_S)), 0)]
            moving = math.hypot(row.x - earlier.x, row.y - earlier.y) > MOTION_MIN_M
            room_by_motion[moving][1] += 1
            if estimate.floor != row.floor:
                continue
            floor_ok += 1
            room_ok += estimate.zone == row.zone
            room_by_motion[moving][0] += estimate.zone == row.zone
            if math.isnan(row.x):  # zone-only ground truth
                continue
            error = math.hypot(estimate.x - row.x, estimate.y - row.y)
            errors.append(error)
            within.append(error <= estimate.accuracy_m)
    errors_array = np.array(errors) if errors else np.array([math.nan])
    return {
        "median_m": float(np.median(errors_array)),
        "p90_m": float(np.percentile(errors_array, 90)),
        "floor_accuracy": floor_ok / max(covered, 1),
        "room_accuracy": room_ok / max(covered, 1),
        "room_accuracy_parked": room_by_motion[False][0] / max(room_by_motion[False][1], 1),
        "room_accuracy_moving": (
            room_by_motion[True][0] / room_by_motion[True][1]
            if room_by_motion[True][1]
            else math.nan
        ),
        "moving_share": room_by_motion[True][1] / max(covered, 1),
        "coverage": covered / max(samples, 1),
        "sigma_coverage": float(np.mean(within)) if within else math.nan,
    }


def cramer_rao(simulator: RadioSimulator, readings, truth, config: RadioConfig) -> dict:
    """Cramer-Rao bound RMSE >= 0.46 (sigma/n) d / sqrt(N), two ways.

    - per advertisement: sigma = shadowing and fast fading together, N = scanners that heard that
      one advertisement, d their mean distance: what a memoryless snapshot method faces;
    - time-averaged: fast fading averaged away, sigma = shadowing only (static for a parked tag),
      N = distinct scanners that heard the tag within 10 s: the floor for any method that
      averages over time but has no prior knowledge of where tags can be (rooms, walls).
    """
    scanners = {s.serial: s for s in simulator.site.scanners}
    truth_by_tag = _truth_index(truth)
    times = {tag: np.array([r.ts for r in rows]) for tag, rows in truth_by_tag.items()}
    per_advert: dict[tuple[str, float], dict[str, float]] = {}
    for reading in readings:
        rows = truth_by_tag[reading.tag]
        i = int(np.searchsorted(times[reading.tag], reading.ts, side="right")) - 1
        row = rows[max(i, 0)]
        scanner = scanners[reading.scanner]
        if scanner.floor != row.floor:
            continue
        distance = math.hypot(scanner.x - row.x, scanner.y - row.y)
        per_advert.setdefault((row.tag, row.ts), {})[reading.scanner] = distance
    fading_sigma = 5.6 / math.sqrt(1 + config.rician_k)  # spread of Rician fading in dB
    sigma = math.sqrt(config.shadowing_sigma_db**2 + fading_sigma**2)
    factor = 0.46 / config.exponent_mean
    snapshot = [
        factor * sigma * statistics.fmean(d.values()) / math.sqrt(len(d))
        for d in per_advert.values()
        if len(d) >= 3
    ]
    averaged = []
    window: dict[str, list] = {}
    for (tag, ts), heard in sorted(per_advert.items(), key=lambda item: item[0][1]):
        recent = window.setdefault(tag, [])
        recent.append((ts, heard))
        while recent and recent[0][0] < ts - 10.0:
            recent.pop(0)
        union = {}
        for _ts, distances in recent:
            union.update(distances)
        if len(union) >= 3:
            averaged.append(
                factor
                * config.shadowing_sigma_db
                * statistics.fmean(union.values())
                / math.sqrt(len(union))
            )
    return {
        "snapshot_m": statistics.fmean(snapshot) if snapshot else math.nan,
        "averaged_m": statistics.fmean(averaged) if averaged else math.nan,
    }


def run_scenario(scenario: Scenario, seed: int, duration_s: float, workdir: Path) -> dict:
    document = generate_hospital(
        floors=scenario.floors,
        scanner_policy=scenario.scanner_policy,
        assets_per_floor=scenario.assets_per_floor,
        seed=seed,
    )
    simulator = RadioSimulator(document, scenario.radio, seed=seed)
    readings, truth = simulator.run(duration_s)
    site = SiteSpec.from_document(document)
    mobility = {state.tag: state.mobility for state in simulator.tags}
    results = run_methods(
        site, readings, truth, workdir, f"{scenario.name}-{seed}", mobility=mobility.get
    )
    return {
        "methods": results,
        "readings": len(readings),
        "tags": len(simulator.tags),
        "cramer_rao_rmse_m": cramer_rao(simulator, readings, truth, scenario.radio),
    }


#: EngineConfig fields set with --engine NAME=VALUE, for every scenario (tried, not defaults).
ENGINE_OPTIONS: dict[str, float] = {}


def run_methods(
    site: SiteSpec, readings, truth, workdir: Path, name: str, config=None, mobility=None
):
    """Engine (through the CSV replay path, timed) and baselines on the same readings."""
    trace_path = workdir / f"{name}.csv"
    write_trace(trace_path, readings)
    out_path = workdir / f"{name}-estimates.csv"
    results: dict[str, dict] = {}
    config = dataclasses.replace(config or EngineConfig(), **ENGINE_OPTIONS)
    started = time.process_time()
    with open(trace_path, newline="") as trace, open(out_path, "w", newline="") as out:
        replay_file(site, trace, out, config=config, mobility_for_tag=mobility)
    elapsed = time.process_time() - started
    results["engine"] = evaluate(site, truth, read_estimates(out_path))
    results["engine"]["readings_per_s"] = len(readings) / elapsed
    for method in BASELINES:
        baseline = Baseline(site, method)
        started = time.process_time()
        estimates = []
        for r in readings:
            estimate = baseline.process(r.ts, r.scanner, r.tag, r.rssi)
            if estimate is not None:
                estimates.append(estimate)
        elapsed = time.process_time() - started
        results[method] = evaluate(site, truth, estimates)
        results[method]["readings_per_s"] = len(readings) / elapsed
    return results


def real_scenarios(workdir: Path) -> dict[str, dict]:
    """The recorded datasets converted by bench/real_data.py (skipped when absent)."""
    from bench import real_data
    from tracking.simulation.radio import TruthRow

    results = {}
    for name in real_data.available_datasets():
        scenario = real_data.load(name)
        site = SiteSpec.from_document(scenario.site)
        readings = [Reading(ts, scanner, tag, rssi) for ts, scanner, tag, rssi in scenario.readings]
        truth = [TruthRow(*row) for row in scenario.truth]
        config = EngineConfig()
        if scenario.tag_height_m is not None:
            config = dataclasses.replace(config, tag_height_m=scenario.tag_height_m)
        methods = run_methods(
            site, readings, truth, workdir, name, config=config, mobility=lambda tag: "roaming"
        )
        results[f"real: {name}"] = {
            "description": scenario.notes.strip().split(". ")[0],
            "methods": methods,
            "seeds": 1,
            "readings": len(readings),
            "cramer_rao_rmse_m": None,
            "xy_truth": scenario.has_xy_truth,
        }
    return results


def read_estimates(path: Path):
    from tracking.localization import Estimate
    from tracking.localization.replay import parse_ts

    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return [
            Estimate(
                parse_ts(row["ts"])[0],
                row["tag"],
                row["floor"],
                float(row["x"]),
                float(row["y"]),
                row["zone"],
                float(row["accuracy_m"]),
            )
            for row in reader
        ]


def aggregate(runs: list[dict]) -> dict:
    """Mean of each metric over seeds (readings/s: median)."""
    methods = {}
    for method in METHODS:
        keys = runs[0]["methods"][method].keys()
        methods[method] = {
            key: (
                statistics.median(run["methods"][method][key] for run in runs)
                if key == "readings_per_s"
                else statistics.fmean(run["methods"][method][key] for run in runs)
            )
            for key in keys
        }
    return {
        "methods": methods,
        "seeds": len(runs),
        "readings": sum(run["readings"] for run in runs),
        "cramer_rao_rmse_m": {
            key: statistics.fmean(run["cramer_rao_rmse_m"][key] for run in runs)
            for key in ("snapshot_m", "averaged_m")
        },
        "per_seed": runs,
    }


def _rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MB, from /proc (Linux)."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, amount, _unit = line.split()
                values[key] = int(amount) / 1024
    return values["VmRSS:"], values["VmHWM:"]


def memory_for_tags(tag_count: int, seconds: int = 8) -> dict[str, float]:
    """Resident memory of an engine tracking `tag_count` tags on the two-floor demo site, each
    heard by ten scanners every second (state per tag is bounded: 32 scanners, 4 zones)."""
    document = generate_hospital(floors=2, scanner_policy="per-room", assets_per_floor=10, seed=0)
    site = SiteSpec.from_document(document)
    scanners = [s for s in site.scanners if s.floor == site.floors[0].name]
    rng = np.random.default_rng(0)
    before, _peak = _rss_mb()
    engine = LocalizationEngine(site, EngineConfig())
    t0 = 1_700_000_000.0
    started = time.process_time()
    readings = 0
    for step in range(seconds):
        for tag_number in range(tag_count):
            tag = "mac:02:00:" + ":".join(f"{tag_number >> k & 255:02X}" for k in (16, 8, 0))
            centre = scanners[tag_number % len(scanners)]
            for scanner in scanners[::2]:
                distance = math.hypot(scanner.x - centre.x, scanner.y - centre.y) + 1.0
                rssi = -59 - 20 * math.log10(distance) + rng.normal(0, 4)
                engine.process(Reading(t0 + step + tag_number * 1e-5, scanner.serial, tag, rssi))
                readings += 1
    elapsed = time.process_time() - started
    after, peak = _rss_mb()
    return {
        "tags": tag_count,
        "tracked": len(engine.tags),
        "engine_mb": after - before,
        "process_peak_mb": peak,
        "bytes_per_tag": (after - before) * 1024 * 1024 / tag_count,
        "readings_per_s": readings / elapsed,
    }


def memory_in_fresh_process(tag_count: int) -> dict[str, float]:
    """`memory_for_tags` in a new interpreter: in this one, memory freed by the scenarios would
    be reused and hide part of the engine's growth."""
    code = (
        "import json; from bench.accuracy import memory_for_tags; "
        f"print(json.dumps(memory_for_tags({int(tag_count)})))"
    )
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(  # nosec B603
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


COLUMNS = (
    ("median_m", "median m", "{:.2f}"),
    ("p90_m", "p90 m", "{:.2f}"),
    ("floor_accuracy", "floor", "{:.1%}"),
    ("room_accuracy", "room", "{:.1%}"),
    ("room_accuracy_parked", "room (parked)", "{:.1%}"),
    ("room_accuracy_moving", "room (moving)", "{:.1%}"),
    ("coverage", "coverage", "{:.1%}"),
    ("sigma_coverage", "1-sigma cov.", "{:.1%}"),
    ("readings_per_s", "readings/s", "{:,.0f}"),
)


def markdown(report: dict) -> str:
    lines = [
        "# Localization accuracy benchmark",
        "",
        f"Command: `{report['command']}`  ",
        f"Seeds per scenario: {report['seeds']}, trace length {report['duration_s']:.0f} s each.",
        "",
    ]
    for name, result in report["scenarios"].items():
        lines += [
            f"## {name}: {result['description']}",
            "",
            f"{result['readings']:,} readings in all seeds"
            + (
                "; Cramer-Rao bound RMSE >= "
                f"{result['cramer_rao_rmse_m']['snapshot_m']:.2f} m per advertisement, "
                f">= {result['cramer_rao_rmse_m']['averaged_m']:.2f} m time-averaged "
                "(shadowing only)"
                if result["cramer_rao_rmse_m"]
                else ""
            )
            + f"; {result['methods']['engine'].get('moving_share', 0):.0%} of samples moving",
            "",
            "| method | " + " | ".join(label for _k, label, _f in COLUMNS) + " |",
            "|---|" + "---|" * len(COLUMNS),
        ]
        for method in METHODS:
            values = result["methods"][method]
            cells = []
            for key, _label, fmt in COLUMNS:
                value = values.get(key, math.nan)
                no_sigma = key == "sigma_coverage" and method != "engine"
                cells.append("n/a" if no_sigma or value != value else fmt.format(value))
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    memory = report.get("memory")
    if memory:
        lines += [
            "## Memory",
            "",
            f"{memory['tracked']:,} tags tracked at once, each heard by 10 scanners every second: "
            f"the engine's state adds {memory['engine_mb']:.0f} MB resident "
            f"({memory['bytes_per_tag']:,.0f} bytes per tag); that process (interpreter, numpy, "
            f"scipy, shapely included) peaked at {memory['process_peak_mb']:.0f} MB resident; "
            f"{memory['readings_per_s']:,.0f} readings/s (engine only, no CSV).",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one seed only")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds per trace")
    parser.add_argument("--only", help="run only the scenario with this name")
    parser.add_argument("--memory-tags", type=int, default=10_000)
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--no-real", action="store_true", help="skip the recorded datasets")
    parser.add_argument(
        "--engine",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an EngineConfig number to try instead of its default, e.g. quiet_solve_max_s=6",
    )
    args = parser.parse_args(argv)
    fields = {f.name for f in dataclasses.fields(EngineConfig)}
    for option in args.engine:
        name, _, value = option.partition("=")
        if name not in fields:
            parser.error(f"--engine {option}: EngineConfig has no field {name!r}")
        ENGINE_OPTIONS[name] = float(value)
    seeds = 1 if args.quick else args.seeds
    duration = 300.0 if args.quick else args.duration
    report = {
        "command": " ".join(
            ["python -m bench.accuracy", *(argv if argv is not None else sys.argv[1:])]
        ),
        "seeds": seeds,
        "duration_s": duration,
        "scenarios": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in scenarios():
            if args.only and scenario.name != args.only:
                continue
            runs = [
                run_scenario(scenario, 101 + seed, duration, Path(tmp)) for seed in range(seeds)
            ]
            result = aggregate(runs)
            result["description"] = scenario.description
            report["scenarios"][scenario.name] = result
            print(markdown({**report, "scenarios": {scenario.name: result}}).split("\n", 4)[4])
            sys.stdout.flush()
        if not args.only and not args.no_real:
            for name, result in real_scenarios(Path(tmp)).items():
                report["scenarios"][name] = result
                print(markdown({**report, "scenarios": {name: result}}).split("\n", 4)[4])
    if args.memory_tags:
        report["memory"] = memory_in_fresh_process(args.memory_tags)
    text = markdown(report)
    print(text.split("## Memory")[-1] if "memory" in report else "")
    if not args.no_save:
        RESULTS_DIR.mkdir(exist_ok=True)
        for result in report["scenarios"].values():
            result.pop("per_seed", None)
        (RESULTS_DIR / "accuracy.json").write_text(json.dumps(report, indent=2) + "\n")
        (RESULTS_DIR / "accuracy.md").write_text(text)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
