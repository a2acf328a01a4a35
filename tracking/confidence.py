"""Honest location: does the evidence still support the room an asset is shown in?

Plain Python (no Django), shared by the pipeline (which records the last room it could confirm)
and the read side (which judges the stored estimate again at read time, when scanners may have
gone offline and the asset may have fallen silent). See docs/ui.md, "Honest location".

An estimate's room is **confirmed** when all of these hold:

- it names a zone at all;
- the zone's posterior probability (the engine's hidden Markov model over zones, see
  docs/localization.md) is at least `min_zone_probability`. The default, 0.85, is the posterior
  the engine itself demands before it moves a parked tag to a new zone: a reported zone below it
  is only kept by hysteresis, not chosen afresh by the evidence;
- at least `min_scanners` scanners were used: one scanner gives a range, never a side of a wall,
  so it cannot tell its own room from the room behind it (with one or two the engine already
  refuses a position error below 2.5 m);
- the 68 % accuracy radius is at most `max_accuracy_m` (5 m: a circle of about 80 m^2, three to
  four single patient rooms): beyond that the position itself says nothing about the room, and
  the radius grows exactly when the fit is poor or the other zone hypotheses lie far away;
- the scanners that cover the zone (mounted in it; for a zone with no scanner of its own, those
  of the zones touching it) are not all offline: their silence is not evidence of absence.

It is **stale** when the asset has not been heard for `stale_after_s` (or is marked missing):
whatever the last estimate said, it describes the past. Otherwise it is **uncertain**, and the
honest answer is the last confirmed room and when, with the current confidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Quality(StrEnum):
    CONFIRMED = "confirmed"
    UNCERTAIN = "uncertain"
    STALE = "stale"


class Reason(StrEnum):
    """Why a room is not confirmed, most important first in an assessment."""

    NOT_HEARD = "not-heard"
    NO_RECENT_ESTIMATE = "no-recent-estimate"
    SCANNERS_OFFLINE = "scanners-offline"
    NO_ZONE = "no-zone"
    CONFIDENCE_UNKNOWN = "confidence-unknown"
    LOW_CONFIDENCE = "low-confidence"
    FEW_SCANNERS = "few-scanners"
    POOR_ACCURACY = "poor-accuracy"


#: (value, label) pairs for forms, serializers and the OpenAPI enums.
QUALITY_CHOICES = [(quality.value, quality.value) for quality in Quality]
REASON_CHOICES = [(reason.value, reason.value) for reason in Reason]


@dataclass(frozen=True)
class Thresholds:
    min_zone_probability: float = 0.85
    min_scanners: int = 2
    max_accuracy_m: float = 5.0
    stale_after_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0.0 < self.min_zone_probability <= 1.0:
            raise ValueError("min_zone_probability must be in (0, 1]")
        if self.min_scanners < 1:
            raise ValueError("min_scanners must be at least 1")
        if not self.max_accuracy_m > 0.0:
            raise ValueError("max_accuracy_m must be positive")
        if not self.stale_after_s > 0.0:
            raise ValueError("stale_after_s must be positive")


Instant = float | datetime  # epoch seconds or an aware datetime; one kind per call


@dataclass(frozen=True)
class Evidence:
    """What the latest estimate of an asset rests on. `zone` is any identifier (id or name);
    `None` fields are unknown (rows written before the confidence was recorded)."""

    zone: object | None
    zone_probability: float | None
    scanners_used: int | None
    accuracy_m: float | None
    estimated_at: Instant
    last_seen_at: Instant
    zone_scanners_offline: bool = False
    present: bool = True


@dataclass(frozen=True)
class Assessment:
    quality: Quality
    reasons: tuple[Reason, ...] = ()

    @property
    def confirmed(self) -> bool:
        return self.quality is Quality.CONFIRMED


def _age_s(now: Instant, then: Instant) -> float:
    delta = now - then
    return delta.total_seconds() if isinstance(delta, timedelta) else float(delta)


def room_problems(evidence: Evidence, limits: Thresholds) -> tuple[Reason, ...]:
    """What keeps the estimate's own evidence from supporting its room (time left aside)."""
    if evidence.zone is None or evidence.zone == "":
        return (Reason.NO_ZONE,)
    problems = []
    if evidence.zone_scanners_offline:
        problems.append(Reason.SCANNERS_OFFLINE)
    if evidence.zone_probability is None or evidence.scanners_used is None:
        problems.append(Reason.CONFIDENCE_UNKNOWN)
    else:
        if evidence.zone_probability < limits.min_zone_probability:
            problems.append(Reason.LOW_CONFIDENCE)
        if evidence.scanners_used < limits.min_scanners:
            problems.append(Reason.FEW_SCANNERS)
    if evidence.accuracy_m is None or evidence.accuracy_m > limits.max_accuracy_m:
        problems.append(Reason.POOR_ACCURACY)
    return tuple(problems)


def supports_room(evidence: Evidence, limits: Thresholds) -> bool:
    """The estimate, at its own time, confirms its room (what the pipeline records)."""
    return not room_problems(evidence, limits)


def assess(evidence: Evidence, now: Instant, limits: Thresholds) -> Assessment:
    """The location quality at `now` (event time and wall clock are both UTC epoch-based)."""
    reasons: list[Reason] = []
    stale = not evidence.present or _age_s(now, evidence.last_seen_at) > limits.stale_after_s
    if stale:
        reasons.append(Reason.NOT_HEARD)
    elif _age_s(now, evidence.estimated_at) > limits.stale_after_s:
        # heard, but no position for a while (e.g. only by scanners the engine cannot use)
        reasons.append(Reason.NO_RECENT_ESTIMATE)
    reasons.extend(room_problems(evidence, limits))
    if stale:
        return Assessment(Quality.STALE, tuple(reasons))
    if reasons:
        return Assessment(Quality.UNCERTAIN, tuple(reasons))
    return Assessment(Quality.CONFIRMED)
