"""The cold-chain compliance report of one sensor over a period: temperature statistics, time in
range, mean kinetic temperature, and every excursion with its duration, peak, degree-minutes and
who acknowledged and resolved it with what note. Rendered as JSON, CSV or plain text."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from alerts.models import Alert
from environment import compliance, rules
from environment.models import EnvironmentReading, Sensor

EXCURSION_KINDS = (rules.TEMPERATURE_HIGH, rules.TEMPERATURE_LOW)
MAX_HOLD_INTERVALS = 3


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def build_report(sensor: Sensor, start: datetime, end: datetime) -> dict:
    profile = sensor.profile
    rows = EnvironmentReading.objects.filter(
        sensor=sensor, ts__gte=start, ts__lt=end, temperature_c__isnull=False
    ).order_by("ts")
    points = [(ts.timestamp(), value) for ts, value in rows.values_list("ts", "temperature_c")]
    max_hold = MAX_HOLD_INTERVALS * sensor.expected_interval_s
    low, high = profile.temperature_min_c, profile.temperature_max_c
    summary = compliance.summarize(
        points, end=min(end, timezone.now()).timestamp(), low=low, high=high, max_hold_s=max_hold
    )
    alerts = (
        Alert.objects.filter(sensor=sensor, started_at__lt=end)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=start))
        .select_related("acknowledged_by", "resolved_by")
        .order_by("started_at")
    )
    excursions, other_alerts = [], []
    for alert in alerts:
        item = {
            "alert": alert.pk,
            "kind": alert.kind,
            "severity": alert.severity,
            "started_at": _iso(alert.started_at),
            "ended_at": _iso(alert.ended_at),
            "duration_min": None,
            "peak": alert.peak_value,
            "unit": alert.unit,
            "state": alert.state,
            "acknowledged_by": alert.acknowledged_by.get_username()
            if alert.acknowledged_by
            else None,
            "acknowledged_at": _iso(alert.acknowledged_at),
            "acknowledge_comment": alert.acknowledge_comment,
            "resolved_by": alert.resolved_by.get_username()
            if alert.resolved_by
            else ("automatic" if alert.resolved_automatically else None),
            "resolved_at": _iso(alert.resolved_at),
            "resolution_note": alert.resolution_note,
        }
        finish = alert.ended_at or min(end, timezone.now())
        item["duration_min"] = round((finish - alert.started_at).total_seconds() / 60.0, 1)
        if alert.kind in EXCURSION_KINDS:
            span = [
                (t, v) for t, v in points if alert.started_at.timestamp() <= t < finish.timestamp()
            ]
            item["degree_minutes"] = round(
                compliance.degree_minutes(
                    span, end=finish.timestamp(), low=low, high=high, max_hold_s=max_hold
                ),
                1,
            )
            excursions.append(item)
        else:
            other_alerts.append(item)

    def rounded(value):
        return None if value is None else round(value, 2)

    return {
        "sensor": sensor.serial,
        "kind": sensor.kind,
        "zone": str(sensor.zone),
        "contents": sensor.contents,
        "profile": profile.name,
        "range_c": [low, high],
        "from": _iso(start),
        "to": _iso(end),
        "readings": summary.count,
        "min_c": rounded(summary.minimum_c),
        "max_c": rounded(summary.maximum_c),
        "mean_c": rounded(summary.mean_c),
        "mkt_c": rounded(summary.mkt_c),
        "time_in_range_pct": rounded(summary.time_in_range_pct),
        "covered_h": round(summary.covered_s / 3600.0, 2),
        "excursions": excursions,
        "other_alerts": other_alerts,
        "calibration_due": _iso(sensor.calibration_due),
    }


EXCURSION_COLUMNS = [
    "alert",
    "kind",
    "severity",
    "started_at",
    "ended_at",
    "duration_min",
    "peak",
    "degree_minutes",
    "acknowledged_by",
    "acknowledged_at",
    "acknowledge_comment",
    "resolved_by",
    "resolved_at",
    "resolution_note",
]
SUMMARY_FIELDS = [
    "sensor",
    "zone",
    "contents",
    "profile",
    "from",
    "to",
    "readings",
    "min_c",
    "max_c",
    "mean_c",
    "mkt_c",
    "time_in_range_pct",
    "covered_h",
]


def report_csv(report: dict) -> str:
    """Summary lines (field, value), a blank line, then one row per excursion."""
    out = io.StringIO()
    writer = csv.writer(out)
    for name in SUMMARY_FIELDS:
        writer.writerow([name, "" if report[name] is None else report[name]])
    writer.writerow([])
    writer.writerow(EXCURSION_COLUMNS)
    for item in report["excursions"]:
        writer.writerow(["" if item.get(c) is None else item.get(c) for c in EXCURSION_COLUMNS])
    return out.getvalue()


def report_text(report: dict) -> str:
    """A printable page a pharmacy can file."""
    low, high = report["range_c"]
    lines = [
        f"Cold-chain record: {report['sensor']} ({report['zone']})",
        f"Contents: {report['contents'] or '-'}",
        f"Profile: {report['profile']} ({low} to {high} °C)",
        f"Period: {report['from']} to {report['to']}",
        "",
        f"Readings: {report['readings']}    Covered: {report['covered_h']} h",
        f"Min {report['min_c']} °C   Max {report['max_c']} °C   Mean {report['mean_c']} °C   "
        f"MKT {report['mkt_c']} °C",
        f"Time in range: {report['time_in_range_pct']} %",
        "",
        f"Excursions: {len(report['excursions'])}",
    ]
    for item in report["excursions"]:
        lines += [
            f"- #{item['alert']} {item['kind']} ({item['severity']}) {item['started_at']} to "
            f"{item['ended_at'] or 'ongoing'}: {item['duration_min']} min, peak {item['peak']} "
            f"°C, {item['degree_minutes']} °C·min",
            f"  acknowledged by {item['acknowledged_by'] or '-'} at "
            f"{item['acknowledged_at'] or '-'}: {item['acknowledge_comment'] or '-'}",
            f"  resolved by {item['resolved_by'] or '-'} at {item['resolved_at'] or '-'}: "
            f"{item['resolution_note'] or '-'}",
        ]
    if report["other_alerts"]:
        lines += ["", f"Other alerts: {len(report['other_alerts'])}"]
        lines += [
            f"- #{a['alert']} {a['kind']} {a['started_at']} to {a['ended_at'] or 'ongoing'} "
            f"({a['state']})"
            for a in report["other_alerts"]
        ]
    lines += ["", "Reviewed by: ____________________    Date: ______________"]
    return "\n".join(lines) + "\n"
