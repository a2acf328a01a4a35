"""Loading and exporting site files through the management commands."""

import json
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from environment.models import Sensor
from hospital.models import Building, Floor, Zone
from tests.hospital.site_documents import contract_example, first_floor
from tracking.models import Asset, AssetType, Scanner, Tag

DEMO_SITE = Path(__file__).resolve().parents[2] / "hospital" / "fixtures" / "demo_site.json"
pytestmark = pytest.mark.django_db


def write(tmp_path: Path, document: dict, name: str = "site.json") -> Path:
    path = tmp_path / name
    if name.endswith((".yaml", ".yml")):
        path.write_text(yaml.safe_dump(document))
    else:
        path.write_text(json.dumps(document))
    return path


def database_state() -> dict:
    return {
        "buildings": list(Building.objects.values_list("name", flat=True)),
        "floors": list(Floor.objects.values_list("name", "width_m")),
        "zones": list(Zone.objects.values_list("name", "kind", "polygon")),
        "scanners": list(Scanner.objects.values_list("serial", "x", "y", "rssi_at_1m")),
        "sensors": list(Sensor.objects.values_list("serial", "zone__name", "profile__slug")),
        "assets": list(Asset.objects.values_list("name", "asset_type__slug")),
        "tags": list(Tag.objects.values_list("tag_id", "asset__name")),
    }


def export() -> dict:
    out = StringIO()
    call_command("export_site", stdout=out)
    return json.loads(out.getvalue())


def test_the_contract_example_loads_every_part(tmp_path):
    call_command("load_site", str(write(tmp_path, contract_example())), stdout=StringIO())
    scanner = Scanner.objects.get(serial="s1-101")
    assert (scanner.floor.name, scanner.x, scanner.y, scanner.z) == ("Level 1", 3.2, 6.0, 2.6)
    assert Zone.objects.get(name="101").polygon == [[0, 0], [6.4, 0], [6.4, 12], [0, 12]]
    assert Sensor.objects.get(serial="fridge-101").profile.slug == "vaccine-refrigerator"
    tag = Tag.objects.get()
    assert (tag.kind, tag.asset.name) == ("ibeacon", "Pump 1-1")


def test_loading_twice_changes_nothing(tmp_path):
    path = write(tmp_path, contract_example())
    call_command("load_site", str(path), stdout=StringIO())
    before = database_state()
    out = StringIO()
    call_command("load_site", str(path), stdout=out)
    assert database_state() == before
    assert " created" in out.getvalue()
    assert "1 created" not in out.getvalue()


def test_an_edited_file_updates_objects_in_place(tmp_path):
    call_command("load_site", str(write(tmp_path, contract_example())), stdout=StringIO())
    scanner_pk = Scanner.objects.get().pk
    edited = contract_example()
    first_floor(edited)["scanners"][0]["x"] = 4.0
    first_floor(edited)["zones"][0]["kind"] = "storage"
    edited["assets"][0]["type"] = "wheelchair"
    call_command("load_site", str(write(tmp_path, edited)), stdout=StringIO())
    assert Scanner.objects.get().pk == scanner_pk
    assert Scanner.objects.get().x == 4.0
    assert Zone.objects.get().kind == "storage"
    assert Asset.objects.get().asset_type.slug == "wheelchair"
    assert Asset.objects.count() == 1


def test_unknown_asset_types_are_created(tmp_path):
    document = contract_example()
    document["assets"][0]["type"] = "bladder-scanner"
    call_command("load_site", str(write(tmp_path, document)), stdout=StringIO())
    assert AssetType.objects.get(slug="bladder-scanner").name == "Bladder scanner"


@pytest.mark.parametrize(
    ("break_it", "path"),
    [
        (
            lambda d: first_floor(d)["zones"].append(
                {"name": "102", "kind": "room", "polygon": [[5, 5], [9, 5], [9, 9], [5, 9]]}
            ),
            "buildings[0].floors[0].zones[1].polygon: overlaps zone '101'",
        ),
        (
            lambda d: first_floor(d)["zones"][0].update(polygon=[[0, 0], [5, 5], [5, 0], [0, 5]]),
            "buildings[0].floors[0].zones[0].polygon: self-intersecting",
        ),
        (
            lambda d: first_floor(d)["scanners"][0].update(y=-1),
            "buildings[0].floors[0].scanners[0]: scanner at (1.0, -1) lies outside its floor",
        ),
        (
            lambda d: first_floor(d)["scanners"].append(dict(first_floor(d)["scanners"][0])),
            "buildings[0].floors[0].scanners[1].serial: duplicate scanner serial 's1-101'",
        ),
        (
            lambda d: d["assets"][0].update(colour="red"),
            "assets[0].colour: unknown key",
        ),
    ],
)
def test_an_invalid_file_is_rejected_by_path_and_nothing_is_written(tmp_path, break_it, path):
    call_command("load_site", str(write(tmp_path, contract_example())), stdout=StringIO())
    before = database_state()
    document = contract_example()
    first_floor(document)["scanners"][0]["x"] = 1.0
    document["assets"].append({"name": "New pump", "type": "infusion-pump"})
    break_it(document)
    with pytest.raises(CommandError) as caught:
        call_command("load_site", str(write(tmp_path, document)), stdout=StringIO())
    assert path in str(caught.value)
    assert database_state() == before


def test_a_zone_overlapping_one_already_in_the_database_is_rejected(tmp_path):
    call_command("load_site", str(write(tmp_path, contract_example())), stdout=StringIO())
    before = database_state()
    document = contract_example()
    first_floor(document)["zones"] = [
        {"name": "annex", "kind": "storage", "polygon": [[1, 1], [3, 1], [3, 3], [1, 3]]}
    ]
    first_floor(document)["sensors"] = []
    with pytest.raises(CommandError, match=r"zones\[0\]\.polygon: overlaps zone '101' already"):
        call_command("load_site", str(write(tmp_path, document)), stdout=StringIO())
    assert database_state() == before


def test_a_missing_file_and_truncated_json_are_clear_errors(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("load_site", str(tmp_path / "nope.json"))
    truncated = tmp_path / "truncated.json"
    truncated.write_text(json.dumps(contract_example())[:200])
    with pytest.raises(CommandError, match="invalid JSON"):
        call_command("load_site", str(truncated))
    assert Building.objects.count() == 0


def test_yaml_files_load_like_json(tmp_path):
    call_command(
        "load_site", str(write(tmp_path, contract_example(), "site.yaml")), stdout=StringIO()
    )
    assert Scanner.objects.filter(serial="s1-101").exists()


def test_export_load_export_is_a_fixed_point(tmp_path):
    call_command("load_site", str(write(tmp_path, contract_example())), stdout=StringIO())
    first = export()
    call_command("load_site", str(write(tmp_path, first, "export.json")), stdout=StringIO())
    assert export() == first


def test_export_writes_yaml_when_asked(tmp_path):
    call_command("load_site", str(write(tmp_path, contract_example())), stdout=StringIO())
    out = StringIO()
    call_command("export_site", "--format", "yaml", stdout=out)
    assert yaml.safe_load(out.getvalue())["buildings"][0]["floors"][0]["zones"][0]["name"] == "101"


def test_the_demo_hospital_is_big_enough_and_loads():
    call_command("load_site", str(DEMO_SITE), stdout=StringIO())
    assert Floor.objects.count() >= 2
    assert Zone.objects.count() >= 40
    assert Scanner.objects.count() >= 40
    assert Asset.objects.count() >= 60
    assert AssetType.objects.filter(assets__isnull=False).distinct().count() >= 3
    profiles = set(Sensor.objects.values_list("profile__slug", flat=True))
    assert {"vaccine-refrigerator", "vaccine-freezer", "blood-bank-refrigerator"} <= profiles
