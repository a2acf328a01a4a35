"""The honest-location rules on their own: plain Python, times in epoch seconds or datetimes."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracking.confidence import (
    Evidence,
    Quality,
    Reason,
    Thresholds,
    assess,
    room_problems,
    supports_room,
)

LIMITS = Thresholds()  # 0.85, 2 scanners, 5 m, 60 s
NOW = 1_795_000_000.0
GOOD = Evidence(
    zone=7,
    zone_probability=0.97,
    scanners_used=4,
    accuracy_m=2.1,
    estimated_at=NOW - 3,
    last_seen_at=NOW - 1,
)


def test_strong_recent_evidence_confirms_the_room():
    judged = assess(GOOD, NOW, LIMITS)
    assert judged.quality is Quality.CONFIRMED
    assert judged.reasons == ()
    assert judged.confirmed
    assert supports_room(GOOD, LIMITS)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"zone_probability": 0.84}, Reason.LOW_CONFIDENCE),
        ({"scanners_used": 1}, Reason.FEW_SCANNERS),
        ({"accuracy_m": 5.01}, Reason.POOR_ACCURACY),
        ({"zone_scanners_offline": True}, Reason.SCANNERS_OFFLINE),
        ({"zone_probability": None}, Reason.CONFIDENCE_UNKNOWN),
        ({"scanners_used": None}, Reason.CONFIDENCE_UNKNOWN),
        ({"accuracy_m": None}, Reason.POOR_ACCURACY),
        ({"estimated_at": NOW - 61}, Reason.NO_RECENT_ESTIMATE),
    ],
)
def test_each_weakness_alone_makes_the_room_uncertain(change, reason):
    judged = assess(replace(GOOD, **change), NOW, LIMITS)
    assert judged.quality is Quality.UNCERTAIN
    assert judged.reasons == (reason,)


def test_the_thresholds_are_inclusive():
    edge = replace(GOOD, zone_probability=0.85, scanners_used=2, accuracy_m=5.0)
    assert assess(edge, NOW, LIMITS).quality is Quality.CONFIRMED
    heard_just_in_time = replace(GOOD, last_seen_at=NOW - 60, estimated_at=NOW - 60)
    assert assess(heard_just_in_time, NOW, LIMITS).quality is Quality.CONFIRMED


@pytest.mark.parametrize("zone", [None, ""])
def test_no_zone_is_never_a_confirmed_room(zone):
    judged = assess(replace(GOOD, zone=zone, zone_probability=0.3), NOW, LIMITS)
    assert judged.quality is Quality.UNCERTAIN
    assert judged.reasons == (Reason.NO_ZONE,)


def test_not_heard_for_a_while_is_stale_whatever_the_evidence_said():
    judged = assess(replace(GOOD, last_seen_at=NOW - 61, estimated_at=NOW - 61), NOW, LIMITS)
    assert judged.quality is Quality.STALE
    assert judged.reasons == (Reason.NOT_HEARD,)
    weak = replace(GOOD, last_seen_at=NOW - 600, zone_probability=0.4)
    assert assess(weak, NOW, LIMITS).reasons == (Reason.NOT_HEARD, Reason.LOW_CONFIDENCE)


def test_a_missing_asset_is_stale():
    judged = assess(replace(GOOD, present=False), NOW, LIMITS)
    assert judged.quality is Quality.STALE
    assert judged.reasons[0] is Reason.NOT_HEARD


def test_every_reason_is_listed_most_important_first():
    bad = replace(
        GOOD,
        zone_probability=0.5,
        scanners_used=1,
        accuracy_m=9.0,
        zone_scanners_offline=True,
        estimated_at=NOW - 300,
    )
    assert assess(bad, NOW, LIMITS).reasons == (
        Reason.NO_RECENT_ESTIMATE,
        Reason.SCANNERS_OFFLINE,
        Reason.LOW_CONFIDENCE,
        Reason.FEW_SCANNERS,
        Reason.POOR_ACCURACY,
    )


def test_datetimes_work_as_well_as_epoch_seconds():
    now = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    evidence = replace(
        GOOD, estimated_at=now - timedelta(seconds=5), last_seen_at=now - timedelta(seconds=2)
    )
    assert assess(evidence, now, LIMITS).quality is Quality.CONFIRMED
    assert assess(evidence, now + timedelta(minutes=2), LIMITS).quality is Quality.STALE


def test_the_pipelines_view_ignores_time():
    """supports_room is what the pipeline records as confirmed: evidence only."""
    old = replace(GOOD, estimated_at=0.0, last_seen_at=0.0)
    assert supports_room(old, LIMITS)
    assert room_problems(replace(GOOD, scanners_used=1), LIMITS) == (Reason.FEW_SCANNERS,)


def test_stricter_thresholds_and_invalid_ones():
    strict = Thresholds(min_zone_probability=0.99, min_scanners=5, max_accuracy_m=2.0)
    assert assess(GOOD, NOW, strict).reasons == (
        Reason.LOW_CONFIDENCE,
        Reason.FEW_SCANNERS,
        Reason.POOR_ACCURACY,
    )
    for bad in (
        {"min_zone_probability": 0.0},
        {"min_zone_probability": 1.5},
        {"min_scanners": 0},
        {"max_accuracy_m": 0.0},
        {"stale_after_s": -1.0},
    ):
        with pytest.raises(ValueError, match="must"):
            Thresholds(**bad)


@given(
    probability=st.floats(0.0, 1.0),
    scanners=st.integers(0, 12),
    accuracy=st.floats(0.1, 50.0),
    heard_ago=st.floats(0.0, 3600.0),
    offline=st.booleans(),
)
def test_confirmed_only_when_every_condition_holds(
    probability, scanners, accuracy, heard_ago, offline
):
    evidence = Evidence(
        zone="Room 301",
        zone_probability=probability,
        scanners_used=scanners,
        accuracy_m=accuracy,
        estimated_at=NOW - heard_ago,
        last_seen_at=NOW - heard_ago,
        zone_scanners_offline=offline,
    )
    judged = assess(evidence, NOW, LIMITS)
    every = (
        probability >= 0.85
        and scanners >= 2
        and accuracy <= 5.0
        and heard_ago <= 60
        and not offline
    )
    assert (judged.quality is Quality.CONFIRMED) == every
    assert (judged.quality is Quality.STALE) == (heard_ago > 60)
    assert bool(judged.reasons) == (not every)
