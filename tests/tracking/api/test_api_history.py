"""One asset's position history (time window) and zone stays (with dwell)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import PositionSampleFactory, ZoneStayFactory

pytestmark = pytest.mark.services


@pytest.fixture
def pump(site):
    return site.assets["Pump A"]


@pytest.fixture
def samples(site, pump):
    now = timezone.now().replace(microsecond=0)
    return [
        PositionSampleFactory(
            asset=pump, floor=site.floor, zone=site.rooms[0], ts=now - timedelta(hours=h), x=h
        )
        for h in (1, 5, 30, 50)
    ]


def history(client, asset, **params):
    response = client.get(f"/api/v1/assets/{asset.pk}/history/", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_history_defaults_to_the_last_day_oldest_first(nurse, pump, samples):
    body = history(nurse, pump)
    assert body["count"] == 2
    assert [s["x"] for s in body["results"]] == [5.0, 1.0]
    first = body["results"][0]
    assert first["zone"] == "Room 301"
    assert set(first) == {"ts", "floor_id", "zone_id", "zone", "x", "y", "accuracy_m"}


def test_history_window(nurse, pump, samples):
    start = (samples[3].ts - timedelta(minutes=1)).isoformat()
    end = (samples[2].ts + timedelta(minutes=1)).isoformat()
    body = history(nurse, pump, **{"from": start, "to": end})
    assert [s["x"] for s in body["results"]] == [50.0, 30.0]


def test_history_accepts_a_z_suffix_and_an_unencoded_plus(nurse, pump, samples):
    start = samples[3].ts - timedelta(minutes=1)
    assert history(nurse, pump, **{"from": start.strftime("%Y-%m-%dT%H:%M:%SZ")})["count"] == 4
    raw = f"/api/v1/assets/{pump.pk}/history/?from={start.isoformat()}"
    assert nurse.get(raw).json()["count"] == 4


def test_history_is_paginated(nurse, pump, samples):
    start = (samples[3].ts - timedelta(minutes=1)).isoformat()
    body = history(nurse, pump, **{"from": start, "limit": 3})
    assert body["count"] == 4
    assert len(body["results"]) == 3
    assert body["next"]


@pytest.mark.parametrize(
    "params",
    [{"from": "yesterday"}, {"to": "2026-13-01T00:00:00Z"}, {"from": "2026-03-02", "to": "x"}],
)
def test_a_malformed_time_is_a_400(nurse, pump, params):
    response = nurse.get(f"/api/v1/assets/{pump.pk}/history/", params)
    assert response.status_code == 400


def test_a_window_ending_before_it_starts_is_a_400(nurse, pump):
    params = {"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}
    response = nurse.get(f"/api/v1/assets/{pump.pk}/history/", params)
    assert response.status_code == 400
    assert "to" in response.json()


def test_history_of_an_unknown_asset_is_a_404(nurse, site):
    assert nurse.get("/api/v1/assets/999999/history/").status_code == 404


def test_stays_with_dwell_newest_first(nurse, site, pump):
    now = timezone.now()
    ZoneStayFactory(
        asset=pump,
        zone=site.rooms[1],
        entered_at=now - timedelta(hours=3),
        left_at=now - timedelta(hours=2),
    )
    ZoneStayFactory(asset=pump, zone=site.rooms[0], entered_at=now - timedelta(minutes=30))
    body = nurse.get(f"/api/v1/assets/{pump.pk}/stays/").json()
    assert body["count"] == 2
    ongoing, closed = body["results"]
    assert ongoing["zone"] == "Room 301"
    assert ongoing["ongoing"] is True
    assert ongoing["left_at"] is None
    assert 1795 <= ongoing["dwell_s"] <= 1900
    assert closed["zone"] == "Room 302"
    assert closed["floor_id"] == site.floor.pk
    assert closed["ongoing"] is False
    assert closed["dwell_s"] == pytest.approx(3600.0)


def test_stays_window_keeps_stays_overlapping_it(nurse, site, pump):
    now = timezone.now()
    ZoneStayFactory(
        asset=pump,
        zone=site.rooms[1],
        entered_at=now - timedelta(hours=5),
        left_at=now - timedelta(hours=4),
    )
    ZoneStayFactory(asset=pump, zone=site.rooms[0], entered_at=now - timedelta(hours=4))
    start = (now - timedelta(hours=3)).isoformat()
    body = nurse.get(f"/api/v1/assets/{pump.pk}/stays/", {"from": start}).json()
    assert [s["zone"] for s in body["results"]] == ["Room 301"]


def test_history_and_stays_cost_a_fixed_number_of_queries(
    nurse, site, pump, django_assert_max_num_queries
):
    now = timezone.now()
    for minute in range(80):
        PositionSampleFactory(
            asset=pump,
            floor=site.floor,
            zone=site.rooms[minute % 2],
            ts=now - timedelta(minutes=minute),
        )
        ZoneStayFactory(
            asset=pump,
            zone=site.rooms[minute % 2],
            entered_at=now - timedelta(minutes=minute + 1),
            left_at=now - timedelta(minutes=minute),
        )
    with django_assert_max_num_queries(7):
        assert history(nurse, pump)["count"] == 80
    with django_assert_max_num_queries(7):
        assert nurse.get(f"/api/v1/assets/{pump.pk}/stays/").json()["count"] == 80
