"""The asset list: current location, filters, search, pagination, and a fixed query count."""

import pytest

from tests.factories import AssetFactory, AssetLocationFactory, TagFactory

pytestmark = pytest.mark.services


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(a["name"] for a in response.json()["results"])


def test_an_asset_carries_its_current_location_presence_and_battery(nurse, site):
    body = nurse.get("/api/v1/assets/", {"search": "Alaris"}).json()
    (pump,) = body["results"]
    assert pump["type"] == "infusion-pump"
    assert pump["status"] == "available"
    assert pump["department"] == "ICU"
    assert pump["presence"] == "present"
    assert pump["battery_pct"] == 87.0
    assert pump["tag_id"].startswith("ibeacon:")
    location = pump["location"]
    assert location["floor_id"] == site.floor.pk
    assert location["floor"] == "Ward 3"
    assert location["zone_id"] == site.rooms[0].pk
    assert location["zone"] == "Room 301"
    assert (location["x"], location["y"], location["accuracy_m"]) == (2.0, 2.0, 1.5)
    assert location["last_seen"]


def test_an_asset_never_located_has_no_location(nurse, site):
    (bed,) = nurse.get("/api/v1/assets/", {"search": "Bed 7"}).json()["results"]
    assert bed["location"] is None
    assert bed["presence"] == "never-seen"
    assert bed["battery_pct"] is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"type": "infusion-pump"}, ["Pump A", "Pump B", "Pump C"]),
        ({"type": "wheelchair"}, ["Chair 1"]),
        ({"status": "in-use"}, ["Pump B"]),
        ({"status": ["in-use", "maintenance"]}, ["Pump B", "Pump C"]),
        ({"presence": "missing"}, ["Chair 1"]),
        ({"presence": "present"}, ["Pump A", "Pump B", "Pump C"]),
        ({"presence": "never-seen"}, ["Bed 7"]),
        ({"type": "infusion-pump", "presence": "present", "status": "available"}, ["Pump A"]),
    ],
)
def test_filters(nurse, site, params, expected):
    assert names(nurse.get("/api/v1/assets/", params)) == expected


def test_floor_zone_and_department_filters(nurse, site):
    on_floor = nurse.get("/api/v1/assets/", {"floor": site.floor.pk})
    assert names(on_floor) == ["Chair 1", "Pump A", "Pump B"]
    in_room = nurse.get("/api/v1/assets/", {"zone": site.rooms[0].pk})
    assert names(in_room) == ["Chair 1", "Pump A"]
    surgery = nurse.get("/api/v1/assets/", {"department": site.surgery.pk})
    assert names(surgery) == ["Chair 1"]


def test_a_bad_filter_value_is_a_400(nurse, site):
    assert nurse.get("/api/v1/assets/", {"status": "lost"}).status_code == 400
    assert nurse.get("/api/v1/assets/", {"floor": "third"}).status_code == 400


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("chair", ["Chair 1"]),
        ("SN-1001", ["Pump A"]),
        ("volumat", ["Pump B"]),
    ],
)
def test_search_by_name_serial_and_model(nurse, site, term, expected):
    assert names(nurse.get("/api/v1/assets/", {"search": term})) == expected


def test_search_by_tag_id(nurse, site):
    tag_id = site.assets["Chair 1"].tag.tag_id
    assert names(nurse.get("/api/v1/assets/", {"search": tag_id})) == ["Chair 1"]


def test_limit_offset_pagination(nurse, site):
    first = nurse.get("/api/v1/assets/", {"limit": 2}).json()
    assert first["count"] == 5
    assert len(first["results"]) == 2
    assert "offset=2" in first["next"]
    rest = nurse.get("/api/v1/assets/", {"limit": 2, "offset": 4}).json()
    assert [a["name"] for a in rest["results"]] == ["Pump C"]
    assert rest["next"] is None


def test_ordering_by_last_seen(nurse, site):
    body = nurse.get(
        "/api/v1/assets/", {"ordering": "-location__last_seen_at", "floor": site.floor.pk}
    )
    assert [a["name"] for a in body.json()["results"]][-1] == "Chair 1"


def test_asset_detail_and_404(nurse, site):
    pump = site.assets["Pump B"]
    assert nurse.get(f"/api/v1/assets/{pump.pk}/").json()["name"] == "Pump B"
    assert nurse.get("/api/v1/assets/999999/").status_code == 404


def test_the_list_costs_the_same_queries_for_five_or_sixty_assets(
    nurse, site, django_assert_max_num_queries
):
    for n in range(55):
        asset = AssetFactory(name=f"Extra {n:02}", department=site.icu)
        TagFactory(asset=asset)
        AssetLocationFactory(asset=asset, floor=site.floor, zone=site.rooms[n % 2])
    # session + user + groups check + count + page
    with django_assert_max_num_queries(6):
        body = nurse.get("/api/v1/assets/", {"limit": 100}).json()
    assert len(body["results"]) == 60
