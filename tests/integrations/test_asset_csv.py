"""Asset CSV import/export by natural keys, through the resource and the admin's dry-run preview."""

import pytest
import tablib
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from integrations.resources import AssetResource
from tests.factories import AssetFactory, AssetTypeFactory, DepartmentFactory, TagFactory
from tracking.models import Asset, Tag

pytestmark = pytest.mark.django_db
HEADER = "name,type,department,tag,serial_number,manufacturer,model,status,notes\n"
TAG = "ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:5:{}"


@pytest.fixture
def fleet():
    AssetTypeFactory(slug="infusion-pump", name="Infusion pump")
    icu = DepartmentFactory(name="ICU")
    pump = AssetFactory(name="Pump 1", department=icu, serial_number="SN-1")
    TagFactory(asset=pump, tag_id=TAG.format(1))
    return pump


def run_import(csv_text: str, dry_run: bool):
    dataset = tablib.Dataset().load(csv_text, format="csv")
    return AssetResource().import_data(dataset, dry_run=dry_run, raise_errors=False)


def test_export_writes_natural_keys(fleet):
    exported = AssetResource().export().csv
    lines = exported.strip().splitlines()
    assert lines[0] == HEADER.strip()
    assert lines[1].startswith(f"Pump 1,infusion-pump,ICU,{TAG.format(1)},SN-1,")


def test_import_creates_and_updates_by_name_and_moves_tags(fleet):
    csv_text = HEADER + (
        f"Pump 1,infusion-pump,ICU,{TAG.format(2).upper()},SN-1b,,,maintenance,\n"
        f"Pump 2,infusion-pump,,{TAG.format(1)},SN-2,B. Braun,Space,available,new\n"
    )
    result = run_import(csv_text, dry_run=False)
    assert not result.has_errors()
    assert not result.has_validation_errors()
    pump = Asset.objects.get(name="Pump 1")
    assert pump.serial_number == "SN-1b"
    assert pump.status == "maintenance"
    assert pump.tag.tag_id == TAG.format(2)
    second = Asset.objects.get(name="Pump 2")
    assert second.department is None
    assert second.tag.tag_id == TAG.format(1)
    assert Tag.objects.count() == 2


def test_dry_run_reports_each_bad_row_and_writes_nothing(fleet):
    csv_text = HEADER + (
        "Pump 3,no-such-type,,,,,,available,\n"
        "Pump 4,infusion-pump,Nowhere,,,,,available,\n"
        "Pump 5,infusion-pump,,ibeacon:bad,,,,available,\n"
        f"Pump 6,infusion-pump,,{TAG.format(1)},,,,available,\n"
        "Pump 7,infusion-pump,,,,,,broken,\n"
        "Pump 8,infusion-pump,,,,,,available,\n"
    )
    result = run_import(csv_text, dry_run=True)
    invalid = {row.number: row.error_dict for row in result.invalid_rows}
    assert sorted(invalid) == [1, 2, 3, 4, 5]
    assert "unknown asset type" in str(invalid[1])
    assert "unknown department" in str(invalid[2])
    assert "already on asset 'Pump 1'" in str(invalid[4])
    assert "status" in invalid[5]
    assert not Asset.objects.filter(name__in=["Pump 3", "Pump 8"]).exists()


def test_the_admin_previews_an_upload(client, fleet):
    admin = get_user_model().objects.create_superuser("root", "root@hospital.test", "x" * 16)
    client.force_login(admin)
    assert client.get("/admin/tracking/asset/").status_code == 200
    export = client.get("/admin/tracking/asset/export/")
    assert export.status_code == 200
    upload = SimpleUploadedFile(
        "assets.csv",
        (HEADER + "Pump 9,no-such-type,,,,,,available,\nPump 10,infusion-pump,,,,,,,\n").encode(),
        content_type="text/csv",
    )
    response = client.post(
        "/admin/tracking/asset/import/",
        {"import_file": upload, "format": "0", "resource": "0"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "unknown asset type" in page
    assert not Asset.objects.filter(name="Pump 10").exists()
