"""Statistics of a temperature record, in plain Python (no Django): what a compliance report
states about a sensor over a period.

A reading's value is held until the next reading, but never longer than `max_hold_s` (beyond
that the time counts as "no data", not as in range). Mean kinetic temperature follows USP <1079.2>:
MKT = (dH/R) / -ln(mean(exp(-dH/(R*T_i)))) with dH = 83.144 kJ/mol, so dH/R = 10,000 K.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ACTIVATION_ENERGY_J_PER_MOL = 83_144.0
GAS_CONSTANT = 8.3144
KELVIN = 273.15


@dataclass(frozen=True)
class Summary:
    count: int
    minimum_c: float | None
    maximum_c: float | None
    mean_c: float | None
    mkt_c: float | None
    covered_s: float
    in_range_s: float
    time_in_range_pct: float | None


def mean_kinetic_temperature(values_c: list[float]) -> float | None:
    if not values_c:
        return None
    ratio = ACTIVATION_ENERGY_J_PER_MOL / GAS_CONSTANT
    mean = sum(math.exp(-ratio / (v + KELVIN)) for v in values_c) / len(values_c)
    return ratio / -math.log(mean) - KELVIN


def _spans(points: list[tuple[float, float]], end: float, max_hold_s: float):
    """(start, duration, value) of each held value, clipped at `end` and at `max_hold_s`."""
    for i, (ts, value) in enumerate(points):
        following = points[i + 1][0] if i + 1 < len(points) else end
        duration = min(max(following, ts), end) - ts
        yield ts, max(0.0, min(duration, max_hold_s)), value


def summarize(
    points: list[tuple[float, float]],
    *,
    end: float,
    low: float | None,
    high: float | None,
    max_hold_s: float,
) -> Summary:
    """`points` are (epoch s, °C) in time order, all inside the period that ends at `end`."""
    values = [v for _, v in points]
    covered = in_range = 0.0
    for _, duration, value in _spans(points, end, max_hold_s):
        covered += duration
        if (low is None or value >= low) and (high is None or value <= high):
            in_range += duration
    return Summary(
        count=len(values),
        minimum_c=min(values) if values else None,
        maximum_c=max(values) if values else None,
        mean_c=sum(values) / len(values) if values else None,
        mkt_c=mean_kinetic_temperature(values),
        covered_s=covered,
        in_range_s=in_range,
        time_in_range_pct=100.0 * in_range / covered if covered else None,
    )


def degree_minutes(
    points: list[tuple[float, float]],
    *,
    end: float,
    low: float | None,
    high: float | None,
    max_hold_s: float,
) -> float:
    """Integral of how far the temperature was outside [low, high], in °C x minutes."""
    total = 0.0
    for _, duration, value in _spans(points, end, max_hold_s):
        excess = 0.0
        if high is not None and value > high:
            excess = value - high
        elif low is not None and value < low:
            excess = low - value
        total += excess * duration / 60.0
    return total


def daily_extremes(points: list[tuple[float, float]], day_of) -> list[dict]:
    """Min/max/count per calendar day; `day_of(epoch)` names the day (the caller's time zone)."""
    days: dict = {}
    for ts, value in points:
        day = day_of(ts)
        low, high, count = days.get(day, (value, value, 0))
        days[day] = (min(low, value), max(high, value), count + 1)
    return [
        {"day": day, "min_c": low, "max_c": high, "count": count}
        for day, (low, high, count) in sorted(days.items())
    ]
