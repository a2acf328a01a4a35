"""Utilisation maths on status intervals, plain Python (no Django): hours per status, the peak
number of assets in use at once, and a fleet-size verdict."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

TOO_FEW = "too-few"
TOO_MANY = "too-many"
ABOUT_RIGHT = "about-right"
NO_DATA = "no-data"

#: Thresholds of the verdict (docs/workflows.md): all assets in use at the peak or in use more
#: than HIGH of the time is too few; in use less than LOW with at least SPARE idle at the peak
#: is too many.
HIGH_PCT = 80.0
LOW_PCT = 30.0
SPARE_AT_PEAK = 2


def status_intervals(
    initial: str, changes: list[tuple[datetime, str]], start: datetime, end: datetime
) -> list[tuple[datetime, datetime, str]]:
    """The asset's statuses over [start, end): `initial` holds at `start`, each (moment, status)
    change (sorted or not; those outside the period are ignored) starts a new interval."""
    status = initial
    moment = start
    out = []
    for at, new in sorted(c for c in changes if start < c[0] < end):
        if at > moment:
            out.append((moment, at, status))
        status, moment = new, at
    if end > moment:
        out.append((moment, end, status))
    return out


def hours_by_status(intervals: list[tuple[datetime, datetime, str]]) -> dict[str, float]:
    hours: dict[str, float] = defaultdict(float)
    for begin, finish, status in intervals:
        hours[status] += (finish - begin).total_seconds() / 3600.0
    return dict(hours)


def peak_concurrent(per_asset: list[list[tuple[datetime, datetime, str]]], status: str) -> int:
    """Most assets in `status` at the same moment (intervals of one asset never overlap)."""
    edges = []
    for intervals in per_asset:
        for begin, finish, value in intervals:
            if value == status and finish > begin:
                edges.append((begin, 1))
                edges.append((finish, -1))
    edges.sort(key=lambda edge: (edge[0], edge[1]))
    current = peak = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def verdict(assets: int, peak_in_use: int, utilisation_pct: float | None) -> str:
    if not assets or utilisation_pct is None:
        return NO_DATA
    if peak_in_use >= assets or utilisation_pct >= HIGH_PCT:
        return TOO_FEW
    if utilisation_pct < LOW_PCT and assets - peak_in_use >= SPARE_AT_PEAK:
        return TOO_MANY
    return ABOUT_RIGHT
