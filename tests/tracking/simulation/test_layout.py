"""Synthetic hospital layouts: valid, deterministic, rich enough for the demo."""

import pytest
from shapely.geometry import Polygon

from hospital.geometry import polygon_problem
from tracking.localization import SiteSpec
from tracking.simulation.layout import generate_hospital
from tracking.tagids import canonical_tag_id


def floors(document):
    return [floor for building in document["buildings"] for floor in building["floors"]]


@pytest.mark.parametrize("policy", ["per-room", "per-two-rooms"])
def test_zones_are_valid_touch_but_never_overlap_and_lie_inside_the_floor(policy):
    document = generate_hospital(scanner_policy=policy)
    for floor in floors(document):
        site_floor = SiteSpec.from_document(document).floors[floor["level"] - 1]
        assert site_floor.geometry.overlaps() == []
        for zone in floor["zones"]:
            assert polygon_problem(zone["polygon"]) is None
            assert not site_floor.geometry.outside_floor(Polygon(zone["polygon"]))
        for scanner in floor["scanners"]:
            assert site_floor.geometry.contains(scanner["x"], scanner["y"])


def test_the_demo_hospital_is_big_enough_and_has_cold_chain_sensors():
    document = generate_hospital(floors=2)
    all_floors = floors(document)
    assert len(all_floors) == 2
    assert sum(len(f["zones"]) for f in all_floors) >= 40
    assert sum(len(f["scanners"]) for f in all_floors) >= 40
    assert len(document["assets"]) >= 60
    types = {asset["type"] for asset in document["assets"]}
    assert {"infusion-pump", "wheelchair"} <= types
    assert len(types) >= 4
    kinds = {zone["kind"] for f in all_floors for zone in f["zones"]}
    assert {"room", "corridor", "storage", "nurse-station", "pharmacy"} <= kinds
    sensors = [s for f in all_floors for s in f["sensors"]]
    assert {(s["kind"], s["profile"]) for s in sensors} >= {
        ("refrigerator", "vaccine-refrigerator"),
        ("freezer", "vaccine-freezer"),
        ("refrigerator", "blood-bank-refrigerator"),
    }
    for floor in all_floors:
        zone_names = {zone["name"] for zone in floor["zones"]}
        assert all(sensor["zone"] in zone_names for sensor in floor["sensors"])


def test_names_and_tags_are_unique_and_canonical():
    document = generate_hospital(floors=3)
    serials = [s["serial"] for f in floors(document) for s in f["scanners"]]
    assert len(serials) == len(set(serials))
    tags = [asset["tag"] for asset in document["assets"]]
    assert len(tags) == len(set(tags))
    assert all(canonical_tag_id(tag) == tag for tag in tags)
    names = [asset["name"] for asset in document["assets"]]
    assert len(names) == len(set(names))


def test_scanner_policies_differ_as_documented():
    per_room = generate_hospital(floors=1, scanner_policy="per-room")
    per_two = generate_hospital(floors=1, scanner_policy="per-two-rooms")
    rooms = [z for z in floors(per_room)[0]["zones"] if z["kind"] != "corridor"]
    assert len(floors(per_room)[0]["scanners"]) == len(rooms)
    corridor_scanners = [s for s in floors(per_two)[0]["scanners"] if "-c" in s["serial"]]
    assert corridor_scanners
    assert len(floors(per_two)[0]["scanners"]) - len(corridor_scanners) == len(rooms) // 2


def test_same_seed_same_document_and_bad_policy_is_refused():
    assert generate_hospital(seed=3) == generate_hospital(seed=3)
    with pytest.raises(ValueError, match="scanner policy"):
        generate_hospital(scanner_policy="everywhere")
