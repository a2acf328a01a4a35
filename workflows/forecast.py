"""Tag battery trend and replacement forecast: least-squares line through the recent daily
samples, plain Python (no Django, no numpy: a few dozen points)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

#: A rise this large between samples is a battery swap: the trend starts again after it.
SWAP_RISE_PCT = 20.0


@dataclass(frozen=True)
class Forecast:
    slope_pct_per_day: float | None
    replace_on: date | None
    reason: str


def linear_fit(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """(slope, intercept) of the least-squares line, or None for fewer than two distinct x."""
    n = len(points)
    if n < 2:
        return None
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    slope = sxy / sxx
    return slope, mean_y - slope * mean_x


def since_last_swap(samples: list[tuple[date, float]]) -> list[tuple[date, float]]:
    ordered = sorted(samples)
    start = 0
    for i in range(1, len(ordered)):
        if ordered[i][1] - ordered[i - 1][1] >= SWAP_RISE_PCT:
            start = i
    return ordered[start:]


def replacement_date(
    samples: list[tuple[date, float]],
    *,
    threshold_pct: float = 10.0,
    window_days: int = 90,
    min_samples: int = 3,
) -> Forecast:
    """The day the fitted line reaches `threshold_pct`, from the samples of the last
    `window_days` since the last battery swap. No date when there are too few samples or the
    level is not falling: an honest "don't know" beats a made-up date."""
    recent = since_last_swap(samples)
    if recent:
        newest = recent[-1][0]
        recent = [(d, v) for d, v in recent if d >= newest - timedelta(days=window_days)]
    if len(recent) < min_samples:
        return Forecast(None, None, f"needs at least {min_samples} daily samples")
    origin = recent[0][0]
    fit = linear_fit([((d - origin).days, v) for d, v in recent])
    if fit is None:
        return Forecast(None, None, "needs samples on different days")
    slope, intercept = fit
    if slope >= -1e-6:
        return Forecast(round(slope, 4), None, "battery level is not falling")
    days = (threshold_pct - intercept) / slope
    day = origin + timedelta(days=max(days, 0.0))
    return Forecast(round(slope, 4), max(day, origin), f"reaches {threshold_pct:g} % then")
