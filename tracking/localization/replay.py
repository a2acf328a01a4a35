"""Replay a recorded trace (contract section 2) through the engine and write ESTIMATES.csv.

Pure functions, no Django: the `replay` management command builds the SiteSpec from the database
and calls `replay_file`; the benchmark calls `replay_rows` on its own traces. Rows that cannot be
used are counted by reason in `ReplayStats.bad_rows`, never fatal and never silently dropped.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from tracking.localization.engine import LocalizationEngine
from tracking.localization.model import EngineConfig, Estimate, Reading, SiteSpec
from tracking.tagids import canonical_tag_id

TRACE_COLUMNS = ("ts", "scanner", "tag", "rssi")
ESTIMATE_COLUMNS = ("ts", "tag", "floor", "x", "y", "zone", "accuracy_m")
EXTRA_ESTIMATE_COLUMNS = ("scanners_used", "zone_probability")
RSSI_RANGE_DBM = (-130.0, 20.0)
PROGRESS_EVERY_ROWS = 20_000


class TraceFormatError(ValueError):
    """The file as a whole is not a trace (no usable header); rows are never this error."""


@dataclass
class ReplayStats:
    rows: int = 0
    used: int = 0
    estimates: int = 0
    bad_rows: Counter = field(default_factory=Counter)
    out_of_order_rows: int = 0
    tags: set = field(default_factory=set)
    iso_timestamps: bool = True

    def summary(self) -> str:
        bad = sum(self.bad_rows.values())
        lines = [
            f"{self.rows} rows, {self.used} used, {bad} unusable, "
            f"{self.estimates} estimates for {len(self.tags)} tags"
        ]
        lines += [f"  {reason}: {count}" for reason, count in sorted(self.bad_rows.items())]
        if self.out_of_order_rows:
            lines.append(f"  out of order (used anyway): {self.out_of_order_rows}")
        return "\n".join(lines)


def parse_ts(text: str) -> tuple[float, bool]:
    """(epoch seconds, was ISO) from ISO 8601 (naive means UTC) or epoch seconds."""
    if "T" in text or "-" in text[1:]:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp(), True
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value, False


def format_ts(ts: float, iso: bool) -> str:
    """Contract format: ISO 8601 UTC with milliseconds and 'Z', or epoch seconds (ms)."""
    millis = round(ts * 1000)
    if not iso:
        return f"{millis / 1000:.3f}"
    moment = datetime.fromtimestamp(millis // 1000, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis % 1000:03d}Z"


def iter_readings(
    rows: Iterable[list[str]],
    scanners: set[str] | frozenset[str],
    stats: ReplayStats,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[Reading]:
    """Validate trace rows (header already consumed) into readings, counting bad ones by reason:
    wrong_column_count, bad_ts, bad_rssi, rssi_out_of_range, bad_tag, unknown_scanner."""
    tag_cache: dict[str, str | None] = {}
    low, high = RSSI_RANGE_DBM
    previous_ts = -math.inf
    iso_seen = None
    bad = stats.bad_rows
    for row in rows:
        stats.rows += 1
        if on_progress is not None and stats.rows % PROGRESS_EVERY_ROWS == 0:
            on_progress(PROGRESS_EVERY_ROWS)
        if len(row) != 4:
            bad["blank_row" if not any(cell.strip() for cell in row) else "wrong_column_count"] += 1
            continue
        raw_ts, scanner, raw_tag, raw_rssi = row
        try:
            ts, iso = parse_ts(raw_ts.strip())
        except (ValueError, OverflowError):
            bad["bad_ts"] += 1
            continue
        try:
            rssi = float(raw_rssi)
        except ValueError:
            bad["bad_rssi"] += 1
            continue
        if not low <= rssi <= high:  # also false for NaN
            bad["rssi_out_of_range"] += 1
            continue
        tag = tag_cache.get(raw_tag, "")
        if tag == "":
            try:
                tag = canonical_tag_id(raw_tag)
            except ValueError:
                tag = None
            tag_cache[raw_tag] = tag
        if tag is None:
            bad["bad_tag"] += 1
            continue
        scanner = scanner.strip()
        if scanner not in scanners:
            bad["unknown_scanner"] += 1
            continue
        if iso_seen is None:
            iso_seen = iso
            stats.iso_timestamps = iso
        if ts < previous_ts:
            stats.out_of_order_rows += 1
        else:
            previous_ts = ts
        stats.used += 1
        yield Reading(ts, scanner, tag, rssi)
    if on_progress is not None:
        on_progress(stats.rows % PROGRESS_EVERY_ROWS)


def estimate_row(estimate: Estimate, iso: bool) -> list[Any]:
    return [
        format_ts(estimate.ts, iso),
        estimate.tag,
        estimate.floor,
        f"{estimate.x:.2f}",
        f"{estimate.y:.2f}",
        estimate.zone,
        f"{estimate.accuracy_m:.2f}",
        estimate.scanners_used,
        f"{estimate.zone_probability:.3f}",
    ]


def run_engine(
    engine: LocalizationEngine, readings: Iterable[Reading], stats: ReplayStats
) -> Iterator[Estimate]:
    """Every position update for the readings, in event-time order, then the final flush."""
    last_ts = None
    process = engine.process
    tags = stats.tags
    for reading in readings:
        tags.add(reading.tag)
        if last_ts is None or reading.ts > last_ts:
            last_ts = reading.ts
        for estimate in process(reading):
            stats.estimates += 1
            yield estimate
    for estimate in engine.flush(last_ts):
        stats.estimates += 1
        yield estimate


def replay_rows(
    site: SiteSpec,
    rows: Iterable[list[str]],
    out: IO[str] | None,
    *,
    config: EngineConfig | None = None,
    mobility_for_tag: Callable[[str], str | None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    engine: LocalizationEngine | None = None,
) -> tuple[ReplayStats, list[Estimate] | None]:
    """Replay header-less trace rows. Writes ESTIMATES.csv to `out` when given, otherwise
    returns the estimates (for the benchmark)."""
    stats = ReplayStats()
    engine = engine or LocalizationEngine(site, config, mobility_for_tag)
    scanners = frozenset(scanner.serial for scanner in site.scanners)
    readings = iter_readings(rows, scanners, stats, on_progress)
    if out is None:
        return stats, list(run_engine(engine, readings, stats))
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ESTIMATE_COLUMNS + EXTRA_ESTIMATE_COLUMNS)
    for estimate in run_engine(engine, readings, stats):
        writer.writerow(estimate_row(estimate, stats.iso_timestamps))
    return stats, None


def check_header(header: list[str] | None) -> None:
    if header is None:
        raise TraceFormatError("the trace is empty (expected a header row ts,scanner,tag,rssi)")
    names = [cell.strip().lower() for cell in header]
    if names != list(TRACE_COLUMNS):
        raise TraceFormatError(f"the trace header must be ts,scanner,tag,rssi, not {header!r}")


def replay_file(
    site: SiteSpec,
    trace: IO[str],
    out: IO[str],
    *,
    config: EngineConfig | None = None,
    mobility_for_tag: Callable[[str], str | None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ReplayStats:
    """Replay an open TRACE.csv into an open ESTIMATES.csv (contract section 2)."""
    rows = csv.reader(trace)
    check_header(next(rows, None))
    stats, _ = replay_rows(
        site, rows, out, config=config, mobility_for_tag=mobility_for_tag, on_progress=on_progress
    )
    return stats
