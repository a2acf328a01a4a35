"""Buildings, floors with their zone polygons, zones, and scanner health."""

from datetime import timedelta

import pytest
from django.urls import include, path
from django.utils import timezone
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from tests.factories import ScannerFactory, ScannerHealthFactory, ZoneFactory

pytestmark = pytest.mark.services


def test_buildings_list_their_floors(nurse, site):
    body = nurse.get("/api/v1/buildings/").json()
    by_name = {b["name"]: b for b in body["results"]}
    building = by_name[site.floor.building.name]
    assert [f["name"] for f in building["floors"]] == ["Ward 3"]
    assert set(building["floors"][0]) == {"id", "name", "level", "width_m", "height_m"}


def test_a_floor_carries_its_zones_with_polygons(nurse, site):
    body = nurse.get(f"/api/v1/floors/{site.floor.pk}/").json()
    assert body["building"] == site.floor.building.name
    assert (body["width_m"], body["height_m"]) == (40.0, 20.0)
    assert [z["name"] for z in body["zones"]] == ["Room 301", "Room 302"]
    assert body["zones"][1]["polygon"] == [[5, 0], [10, 0], [10, 5], [5, 5]]


def test_floors_filter_by_building(nurse, site):
    body = nurse.get("/api/v1/floors/", {"building": site.other_floor.building_id}).json()
    assert [f["name"] for f in body["results"]] == ["Ward 4"]


def test_zones_filter_by_floor_kind_and_department(nurse, site):
    ZoneFactory(floor=site.floor, name="Store", kind="storage", polygon=[[20, 0], [25, 0], [25, 5]])
    on_floor = nurse.get("/api/v1/zones/", {"floor": site.floor.pk}).json()
    assert [z["name"] for z in on_floor["results"]] == ["Room 301", "Room 302", "Store"]
    storage = nurse.get("/api/v1/zones/", {"kind": "storage"}).json()
    assert [z["name"] for z in storage["results"]] == ["Store"]
    icu = nurse.get("/api/v1/zones/", {"department": site.icu.pk}).json()
    assert [z["department"] for z in icu["results"]] == ["ICU", "ICU"]


def test_site_lists_cost_a_fixed_number_of_queries(nurse, site, django_assert_max_num_queries):
    for n in range(20):
        ZoneFactory(floor=site.other_floor, name=f"Bay {n}", polygon=[[n, 0], [n + 1, 0], [n, 1]])
    for url in ("/api/v1/buildings/", "/api/v1/floors/", "/api/v1/zones/"):
        with django_assert_max_num_queries(6):
            assert nurse.get(url).status_code == 200


def test_scanner_health(biomed, site, django_assert_max_num_queries):
    heard = ScannerHealthFactory(
        scanner=ScannerFactory(serial="gw-1", floor=site.floor),
        agent_version="2.3.1",
        spool_depth=12,
        readings_accepted=900,
        readings_rejected=3,
        last_heartbeat_at=timezone.now() - timedelta(seconds=20),
    )
    ScannerHealthFactory(scanner=ScannerFactory(serial="gw-2", floor=site.floor), online=False)
    ScannerFactory(serial="gw-3", floor=site.other_floor)
    with django_assert_max_num_queries(6):
        body = biomed.get("/api/v1/scanners/").json()
    by_serial = {s["serial"]: s for s in body["results"]}
    assert by_serial["gw-1"]["online"] is True
    health = by_serial["gw-1"]["health"]
    assert health["agent_version"] == "2.3.1"
    assert health["spool_depth"] == 12
    assert (health["readings_accepted"], health["readings_rejected"]) == (900, 3)
    assert health["last_heartbeat_at"] == heard.last_heartbeat_at.isoformat().replace("+00:00", "Z")
    assert by_serial["gw-3"]["online"] is False
    assert by_serial["gw-3"]["health"] is None
    offline = biomed.get("/api/v1/scanners/", {"online": "false"}).json()
    assert sorted(s["serial"] for s in offline["results"]) == ["gw-2", "gw-3"]
    online = biomed.get("/api/v1/scanners/", {"online": "true", "floor": site.floor.pk}).json()
    assert [s["serial"] for s in online["results"]] == ["gw-1"]


def test_the_read_api_schema_validates_without_warnings():
    """As `spectacular --validate --fail-on-warn`, restricted to this API's views."""
    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=[path("api/v1/", include("tracking.api.urls"))])
    schema = generator.get_schema(request=None, public=True)
    validate_schema(schema)
    assert not GENERATOR_STATS, (
        dict(GENERATOR_STATS._warn_cache),
        dict(GENERATOR_STATS._error_cache),
    )
    assert "/api/v1/assets/{id}/history/" in schema["paths"]
    assert "/api/v1/scanners/" in schema["paths"]
    location = schema["components"]["schemas"]["Location"]["properties"]
    for name in ("zone_confidence", "quality", "last_confirmed_zone", "last_confirmed_at"):
        assert name in location
    quality = schema["components"]["schemas"]["LocationQualityEnum"]
    assert quality["enum"] == ["confirmed", "uncertain", "stale"]
