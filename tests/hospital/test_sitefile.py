"""Site-file validation: every rule rejects with the path of the offending value."""

import pytest

from hospital.sitefile import SiteFileError, parse_site_text, validate_site_document
from tests.hospital.site_documents import contract_example, first_floor

PROFILES = {"vaccine-refrigerator", "vaccine-freezer"}
SENSOR_KINDS = {"refrigerator", "freezer", "room"}


def problems_of(document) -> list[str]:
    with pytest.raises(SiteFileError) as caught:
        validate_site_document(document, profiles=PROFILES, sensor_kinds=SENSOR_KINDS)
    return caught.value.problems


def test_the_contract_example_is_valid():
    validate_site_document(contract_example(), profiles=PROFILES, sensor_kinds=SENSOR_KINDS)


def test_tag_ids_come_back_canonical():
    document = contract_example()
    document["assets"][0]["tag"] = "IBEACON:F7826DA6-4FA2-4E98-8024-BC5B71E0893E:01:1"
    validated = validate_site_document(document)
    assert validated["assets"][0]["tag"] == "ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:1:1"


def test_an_unknown_key_is_named_by_its_path():
    document = contract_example()
    first_floor(document)["zones"][0]["colour"] = "blue"
    assert problems_of(document) == ["buildings[0].floors[0].zones[0].colour: unknown key"]


def test_an_unknown_top_level_key_is_rejected():
    document = contract_example()
    document["bulidings"] = []
    assert "bulidings: unknown key" in problems_of(document)[0]


def test_a_missing_required_key_is_named():
    document = contract_example()
    del first_floor(document)["width_m"]
    assert "buildings[0].floors[0].width_m: is required" in problems_of(document)


def test_a_self_intersecting_polygon_is_rejected():
    document = contract_example()
    first_floor(document)["zones"][0]["polygon"] = [[0, 0], [5, 5], [5, 0], [0, 5]]
    assert problems_of(document) == ["buildings[0].floors[0].zones[0].polygon: self-intersecting"]


def test_overlapping_zones_are_rejected_and_both_named():
    document = contract_example()
    first_floor(document)["zones"].append(
        {"name": "102", "kind": "room", "polygon": [[6, 0], [12, 0], [12, 12], [6, 12]]}
    )
    [problem] = problems_of(document)
    assert problem.startswith("buildings[0].floors[0].zones[1].polygon: overlaps zone '101'")


def test_zones_may_share_a_wall():
    document = contract_example()
    first_floor(document)["zones"].append(
        {"name": "102", "kind": "room", "polygon": [[6.4, 0], [12, 0], [12, 12], [6.4, 12]]}
    )
    validate_site_document(document)


def test_a_zone_outside_its_floor_is_rejected():
    document = contract_example()
    first_floor(document)["zones"][0]["polygon"] = [[60, 0], [70, 0], [70, 5], [60, 5]]
    assert problems_of(document) == [
        "buildings[0].floors[0].zones[0].polygon: lies outside the floor"
    ]


@pytest.mark.parametrize(
    ("polygon", "message"),
    [
        ([[0, 0], [1, 0]], "needs at least 3 points"),
        ([[0, 0], [1, 0], [2, 0]], "has no area"),
        ([[0, 0], [1, "a"], [2, 2]], "must be an [x, y] pair of finite numbers"),
        ("square", "must be a list of [x, y] points, not a string"),
    ],
)
def test_malformed_polygons_are_explained(polygon, message):
    document = contract_example()
    first_floor(document)["zones"][0]["polygon"] = polygon
    assert any(message in problem for problem in problems_of(document))


def test_a_scanner_outside_its_floor_is_rejected():
    document = contract_example()
    first_floor(document)["scanners"][0]["x"] = 80.0
    assert problems_of(document) == [
        "buildings[0].floors[0].scanners[0]: scanner at (80.0, 6.0) lies outside its floor"
    ]


def test_a_duplicate_scanner_serial_is_rejected_across_floors():
    document = contract_example()
    second = {
        "name": "Level 2",
        "level": 2,
        "width_m": 10,
        "height_m": 10,
        "scanners": [{"serial": "s1-101", "kind": "ble", "x": 1, "y": 1}],
    }
    document["buildings"][0]["floors"].append(second)
    [problem] = problems_of(document)
    assert problem == (
        "buildings[0].floors[1].scanners[0].serial: duplicate scanner serial 's1-101' "
        "(also at buildings[0].floors[0].scanners[0].serial)"
    )


def test_duplicate_zone_floor_asset_and_tag_names_are_rejected():
    document = contract_example()
    floor = first_floor(document)
    floor["zones"].append(dict(floor["zones"][0], polygon=[[10, 0], [12, 0], [12, 2], [10, 2]]))
    document["assets"].append(dict(document["assets"][0]))
    problems = problems_of(document)
    assert any("zones[1].name: duplicate zone '101'" in p for p in problems)
    assert any("assets[1].name: duplicate asset name" in p for p in problems)
    assert any("assets[1].tag: duplicate tag" in p for p in problems)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("level", "one", "must be an integer, not a string"),
        ("level", 1.5, "must be an integer"),
        ("width_m", True, "must be a number, not a boolean"),
        ("width_m", -3, "must be between"),
        ("height_m", None, "must be a number, not null"),
    ],
)
def test_wrong_types_on_a_floor_are_named(key, value, message):
    document = contract_example()
    first_floor(document)[key] = value
    assert any(
        p.startswith(f"buildings[0].floors[0].{key}: {message}") for p in problems_of(document)
    )


def test_scanner_calibration_out_of_range_is_rejected():
    document = contract_example()
    first_floor(document)["scanners"][0]["path_loss_exponent"] = 9
    assert problems_of(document) == [
        "buildings[0].floors[0].scanners[0].path_loss_exponent: must be between 1.0 and 6.0, got 9"
    ]


def test_an_unknown_scanner_kind_is_rejected():
    document = contract_example()
    first_floor(document)["scanners"][0]["kind"] = "wifi"
    assert problems_of(document) == [
        "buildings[0].floors[0].scanners[0].kind: 'wifi' is not one of ble, rfid"
    ]


def test_a_sensor_needs_a_zone_of_its_floor_and_a_known_profile_and_kind():
    document = contract_example()
    sensor = first_floor(document)["sensors"][0]
    sensor.update(zone="999", profile="champagne-cooler", kind="wine-rack")
    problems = problems_of(document)
    assert "buildings[0].floors[0].sensors[0].zone: no zone '999' on this floor" in problems
    assert (
        "buildings[0].floors[0].sensors[0].profile: unknown threshold profile 'champagne-cooler'"
        in problems
    )
    assert any(p.startswith("buildings[0].floors[0].sensors[0].kind:") for p in problems)


def test_a_malformed_tag_id_is_named():
    document = contract_example()
    document["assets"][0]["tag"] = "ibeacon:not-a-uuid:1:1"
    [problem] = problems_of(document)
    assert problem.startswith("assets[0].tag: ibeacon uuid 'not-a-uuid' is not a valid UUID")


def test_a_document_that_is_not_an_object_is_rejected():
    assert problems_of(["not", "a", "site"]) == ["$: must be an object, not a list"]


def test_all_problems_are_reported_at_once():
    document = contract_example()
    first_floor(document)["zones"][0]["colour"] = "blue"
    first_floor(document)["scanners"][0]["x"] = 500
    document["assets"][0]["tag"] = "bogus"
    assert len(problems_of(document)) == 3


def test_truncated_json_is_reported_with_its_line():
    with pytest.raises(SiteFileError, match=r"invalid JSON at line 1"):
        parse_site_text('{"name": "x", "buildings": [')


def test_yaml_with_the_same_structure_is_accepted():
    text = """
name: Yaml General
buildings:
  - name: Main
    floors:
      - name: Level 1
        level: 1
        width_m: 10
        height_m: 10
        zones:
          - {name: "101", kind: room, polygon: [[0, 0], [5, 0], [5, 5], [0, 5]]}
"""
    document = validate_site_document(parse_site_text(text, yaml_first=True))
    assert document["buildings"][0]["floors"][0]["zones"][0]["name"] == "101"
