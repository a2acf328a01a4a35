"""Preventive-maintenance due dates, the maintenance alert's state and severity, and recall
serial ranges, plain Python (no Django)."""

from __future__ import annotations

import calendar as _calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

OK = "ok"
DUE_SOON = "due-soon"
OVERDUE = "overdue"


def _calendar_date(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, _calendar.monthrange(year, month)[1]))


def next_due(
    *,
    starts_on: date,
    last_done: date | None,
    interval_days: int | None = None,
    months: tuple[int, ...] = (),
    day_of_month: int = 1,
) -> date:
    """When the next service is due.

    Interval schedules fall due `interval_days` after the last service, or on `starts_on` when the
    asset was never serviced under the schedule. Calendar schedules fall due on `day_of_month`
    (clipped to the month's length) of each month in `months`: the first such date after the last
    service, or on/after `starts_on` when never serviced."""
    if interval_days:
        return starts_on if last_done is None else last_done + timedelta(days=interval_days)
    if not months:
        raise ValueError("a schedule needs an interval in days or calendar months")
    wanted = sorted(set(months))
    after = starts_on - timedelta(days=1) if last_done is None else max(last_done, starts_on)
    for year in range(after.year, after.year + 2):
        for month in wanted:
            candidate = _calendar_date(year, month, day_of_month)
            if candidate > after:
                return candidate
    raise ValueError("no calendar date found")  # unreachable with months in 1..12


def due_state(due: date, today: date, soon_days: int) -> str:
    if due < today:
        return OVERDUE
    if due <= today + timedelta(days=soon_days):
        return DUE_SOON
    return OK


# --- maintenance alerts ----------------------------------------------------------------------

ALERT_DUE = "due"
ALERT_OVERDUE = "overdue"


@dataclass(frozen=True)
class MaintenanceAlertLevel:
    """What an asset's maintenance alert says today: `due` (severity info) from `days_before`
    the due date through the due date itself, then `overdue` (warning), turning critical once
    overdue by `critical_after_days`. `days_overdue` is negative while the date is ahead."""

    state: str
    severity: str
    days_overdue: int


def maintenance_alert(
    due: date, today: date, *, days_before: int = 0, critical_after_days: int | None = 30
) -> MaintenanceAlertLevel | None:
    """The alert an (asset, schedule) needs today, or None while the due date is further away
    than `days_before`. The severity only rises as the days pass."""
    days_overdue = (today - due).days
    if days_overdue < -days_before:
        return None
    if days_overdue <= 0:
        return MaintenanceAlertLevel(ALERT_DUE, "info", days_overdue)
    if critical_after_days is not None and days_overdue >= critical_after_days:
        return MaintenanceAlertLevel(ALERT_OVERDUE, "critical", days_overdue)
    return MaintenanceAlertLevel(ALERT_OVERDUE, "warning", days_overdue)


_PARTS = re.compile(r"(\d+)")


def natural_key(serial: str) -> tuple:
    """`SN-99` sorts before `SN-100`: digit runs compare as numbers, the rest case-insensitively."""
    return tuple(
        (1, int(part), "") if part.isdigit() else (0, 0, part.casefold())
        for part in _PARTS.split(serial.strip())
        if part
    )


def serial_in_range(serial: str, first: str, last: str) -> bool:
    """Inclusive natural-order range; an empty bound is open."""
    if not serial.strip():
        return False
    key = natural_key(serial)
    if first.strip() and key < natural_key(first):
        return False
    return not (last.strip() and key > natural_key(last))
