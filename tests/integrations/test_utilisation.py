"""Utilisation from zone stays: hours per category, clipped to the period, as JSON, CSV and a
management command."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from hospital.roles import BIOMED, NURSE
from integrations.keys import issue_key
from integrations.utilisation import as_csv, utilisation
from tests.factories import (
    AssetFactory,
    AssetTypeFactory,
    DepartmentFactory,
    FloorFactory,
    ZoneFactory,
    ZoneStayFactory,
)

pytestmark = pytest.mark.django_db
DAY = datetime(2026, 11, 24, tzinfo=UTC)


def square(x):
    return [[x, 0], [x + 5, 0], [x + 5, 5], [x, 5]]


@pytest.fixture
def stays():
    floor = FloorFactory()
    room = ZoneFactory(floor=floor, name="101", kind="room", polygon=square(0))
    storage = ZoneFactory(floor=floor, name="Store", kind="storage", polygon=square(5))
    soiled = ZoneFactory(floor=floor, name="Dirty", kind="soiled-utility", polygon=square(10))
    corridor = ZoneFactory(floor=floor, name="C", kind="corridor", polygon=square(15))
    icu = DepartmentFactory(name="ICU")
    pumps = AssetTypeFactory(slug="infusion-pump", name="Infusion pump")
    pump = AssetFactory(name="Pump 1", asset_type=pumps, department=icu)
    AssetFactory(name="Pump 2", asset_type=pumps, department=icu)
    chair = AssetFactory(name="Chair", asset_type=AssetTypeFactory(slug="wheelchair", name="W"))

    def stay(asset, zone, start_h, end_h):
        ZoneStayFactory(
            asset=asset,
            zone=zone,
            entered_at=DAY + timedelta(hours=start_h),
            left_at=None if end_h is None else DAY + timedelta(hours=end_h),
        )

    stay(pump, storage, -5, 2)  # 2 h inside the day
    stay(pump, corridor, 2, 2.5)
    stay(pump, room, 2.5, 12.5)
    stay(pump, soiled, 12.5, 14)
    stay(pump, storage, 14, None)  # open: counts until the end of the period
    stay(chair, room, 30, 31)  # after the period
    return {"pump": pump}


def test_hours_per_category_are_clipped_to_the_period(stays):
    rows = utilisation(DAY, DAY + timedelta(days=1), now=DAY + timedelta(days=3))
    by_key = {(r.asset_type, r.department): r for r in rows}
    pumps = by_key[("infusion-pump", "ICU")]
    assert pumps.assets == 2
    assert pumps.in_use_h == pytest.approx(10.0)
    assert pumps.idle_h == pytest.approx(2.0 + 10.0)
    assert pumps.cleaning_h == pytest.approx(1.5)
    assert pumps.transit_h == pytest.approx(0.5)
    assert pumps.utilisation_pct == pytest.approx(41.7)
    chairs = by_key[("wheelchair", "")]
    assert chairs.located_h == 0
    assert chairs.utilisation_pct is None


def test_an_open_stay_counts_until_now(stays):
    rows = utilisation(DAY, DAY + timedelta(days=1), now=DAY + timedelta(hours=15))
    pumps = next(r for r in rows if r.asset_type == "infusion-pump")
    assert pumps.idle_h == pytest.approx(2.0 + 1.0)


def test_csv_and_api_and_command(stays):
    rows = [r.as_dict() for r in utilisation(DAY, DAY + timedelta(days=1))]
    text = as_csv(rows)
    assert text.splitlines()[0] == (
        "asset_type,department,assets,in_use_h,idle_h,cleaning_h,transit_h,other_h,"
        "located_h,utilisation_pct"
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_key('cmms', BIOMED)}")
    url = "/api/v1/reports/utilisation/?start=2026-11-24&end=2026-11-25T00:00:00Z"
    answer = client.get(url)
    assert answer.status_code == 200, answer.content
    assert answer.json()["rows"][0]["in_use_h"] == 10.0
    assert "soiled-utility" in answer.json()["categories"]["cleaning"]
    as_file = client.get(url + "&format=csv")
    assert as_file["Content-Type"].startswith("text/csv")
    assert as_file.content.decode() == text
    assert client.get(url.replace("2026-11-24", "yesterday")).status_code == 400
    nurse = APIClient()
    nurse.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_key('ehr', NURSE)}")
    assert nurse.get(url).status_code == 403
    out = io.StringIO()
    call_command("utilisation_report", "--start", "2026-11-24", "--end", "2026-11-25", stdout=out)
    assert out.getvalue() == text
