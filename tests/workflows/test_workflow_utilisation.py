"""Utilisation from the status history (rule-made and manual changes alike) and zone stays:
hours per status, peak in use, the fleet verdict per floor, CSV and chart data."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import (
    AssetFactory,
    DepartmentFactory,
    FloorFactory,
    ZoneFactory,
    ZoneStayFactory,
)
from workflows import utilisation
from workflows.models import StatusChange

pytestmark = pytest.mark.django_db
DAY = datetime(2026, 11, 2, tzinfo=UTC)


def at(hours):
    return DAY + timedelta(hours=hours)


@pytest.fixture
def history(ward):
    floor = ward["floor"]
    room = ward["zones"]["room"]
    icu = ward["icu"]
    pumps = [
        AssetFactory(name=f"Pump H{i}", asset_type=ward["pumps"], department=icu) for i in range(3)
    ]

    def change(asset, hours, old, new):
        StatusChange.objects.create(asset=asset, at=at(hours), old_status=old, new_status=new)

    change(pumps[0], -1, "needs-cleaning", "available")
    change(pumps[0], 2, "available", "in-use")
    change(pumps[0], 12, "in-use", "needs-cleaning")
    change(pumps[0], 14, "needs-cleaning", "available")
    change(pumps[1], 4, "available", "in-use")
    change(pumps[1], 8, "in-use", "available")
    for pump in pumps:
        ZoneStayFactory(asset=pump, zone=room, entered_at=at(-5), left_at=at(30))
    pumps[2].status = "available"
    pumps[2].save()
    return {"pumps": pumps, "floor": floor}


def test_hours_per_status_for_a_day(history):
    data = utilisation.report(at(0), at(24), "asset", now=at(48))
    rows = {row["group"]: row for row in data["rows"]}
    first = rows["Pump H0"]
    assert (first["in_use_h"], first["cleaning_h"], first["idle_h"]) == (10.0, 2.0, 12.0)
    assert first["floor"] == history["floor"].name
    assert first["utilisation_pct"] == pytest.approx(41.7)
    assert rows["Pump H1"]["in_use_h"] == 4.0
    assert rows["Pump H2"]["idle_h"] == 24.0, "never changed: its status held all day"


def test_per_floor_verdict_and_peak(history):
    data = utilisation.report(at(0), at(24), "floor", now=at(48))
    (row,) = data["rows"]
    assert row["assets"] == 3
    assert row["peak_in_use"] == 2
    assert row["in_use_h"] == 14.0
    assert row["verdict"] == "about-right", "19 % in use, but 2 of 3 were busy at once"
    assert data["chart"]["labels"] == [row["group"]]
    assert data["chart"]["datasets"][0] == {"label": "In use", "data": [14.0]}


def test_by_type_includes_the_zone_kind_view(history):
    data = utilisation.report(at(0), at(24), "type", now=at(48))
    assert data["rows"][0]["asset_type"] == "infusion-pump"
    assert data["by_location"][0]["in_use_h"] == 72.0


def test_api_json_csv_and_roles(history, client, biomed, nurse):
    client.force_login(nurse)
    url = "/api/v1/workflows/utilisation/?start=2026-11-02&end=2026-11-03T00:00:00Z"
    assert client.get(url).status_code == 403
    client.force_login(biomed)
    body = client.get(url + "&group=department").json()
    assert body["rows"][0]["department"] == "ICU"
    response = client.get(url + "&group=asset&format=csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["group"] for r in rows] == ["Pump H0", "Pump H1", "Pump H2"]
    assert client.get(url + "&group=planet").status_code == 400
    assert client.get("/api/v1/workflows/utilisation/?start=yesterday").status_code == 400


def test_floor_filter_keeps_the_assets_that_lived_there(history):
    elsewhere = FloorFactory(name="Ward 8")
    zone = ZoneFactory(floor=elsewhere, name="Room 801")
    chair = AssetFactory(
        name="Lost pump",
        asset_type=history["pumps"][0].asset_type,
        department=DepartmentFactory(name="Ortho"),
    )
    ZoneStayFactory(asset=chair, zone=zone, entered_at=at(0), left_at=at(20))
    data = utilisation.report(at(0), at(24), "asset", floor_id=elsewhere.pk, now=at(48))
    assert [row["group"] for row in data["rows"]] == ["Lost pump"]
