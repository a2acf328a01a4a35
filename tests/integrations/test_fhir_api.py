"""The FHIR API against the real database; every resource and Bundle it returns is validated
with the fhir.resources R4B models (the R4-compatible release those models ship)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from fhir.resources.R4B import get_fhir_model_class
from rest_framework.test import APIClient

from alerts.models import Alert
from environment.models import SensorState
from hospital.devices import issue_token
from hospital.roles import BIOMED, NURSE
from integrations.keys import issue_key, revoke_key
from tests.factories import (
    AssetFactory,
    AssetLocationFactory,
    AssetTypeFactory,
    BuildingFactory,
    DepartmentFactory,
    FloorFactory,
    ScannerFactory,
    SensorFactory,
    TagFactory,
    UserFactory,
    ZoneFactory,
)

pytestmark = pytest.mark.django_db


def validated(resource: dict) -> dict:
    """The resource, after fhir.resources accepted it (raises on any schema violation)."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    if resource["resourceType"] == "Bundle":
        for entry in resource.get("entry", []):
            validated(entry["resource"])
    return resource


@pytest.fixture
def hospital():
    building = BuildingFactory(name="Main")
    floor = FloorFactory(building=building, name="Level 1", level=1)
    icu = DepartmentFactory(name="ICU", code="icu")
    room = ZoneFactory(floor=floor, name="101", kind="room", department=icu)
    corridor = ZoneFactory(
        floor=floor, name="C1", kind="corridor", polygon=[[5, 0], [10, 0], [10, 5], [5, 5]]
    )
    pumps = AssetTypeFactory(slug="infusion-pump", name="Infusion pump")
    pump = AssetFactory(
        name="Pump 1", asset_type=pumps, department=icu, serial_number="SN-1", status="in-use"
    )
    TagFactory(asset=pump, tag_id="ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:1:1")
    AssetLocationFactory(asset=pump, floor=floor, zone=room)
    old = AssetFactory(name="Pump 2", asset_type=pumps, status="retired")
    chairs = AssetTypeFactory(slug="wheelchair", name="Wheelchair")
    chair = AssetFactory(name="Chair 1", asset_type=chairs)
    AssetLocationFactory(asset=chair, floor=floor, zone=corridor, presence="missing")
    fridge = SensorFactory(serial="fridge-101", zone=room)
    now = timezone.now()
    SensorState.objects.create(sensor=fridge, temperature_c=4.6, last_ts=now, last_received_at=now)
    excursion = Alert.objects.create(
        source="environment",
        kind="temperature-high",
        subject=f"sensor:{fridge.pk}",
        title="fridge-101",
        sensor=fridge,
        severity="critical",
        peak_value=11.2,
        unit="°C",
        started_at=now - timedelta(hours=2),
        ended_at=now - timedelta(hours=1),
        state="resolved",
    )
    return {
        "floor": floor,
        "room": room,
        "corridor": corridor,
        "icu": icu,
        "pump": pump,
        "old": old,
        "chair": chair,
        "fridge": fridge,
        "excursion": excursion,
        "building": building,
    }


@pytest.fixture
def api():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_key('epic', NURSE)}")
    return client


def get(api, url, status=200) -> dict:
    response = api.get(url)
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/fhir+json")
    return validated(response.json())


def ids(bundle: dict) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])]


def test_metadata_is_a_capability_statement(client):
    statement = get(client, "/fhir/metadata")
    assert statement["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in statement["rest"][0]["resource"]}
    assert types == {"Device", "Location", "Observation", "Organization"}


def test_device_read_maps_type_serial_status_owner_and_location(api, hospital):
    device = get(api, f"/fhir/Device/{hospital['pump'].pk}")
    assert device["serialNumber"] == "SN-1"
    assert device["status"] == "active"
    assert device["type"]["coding"][0]["code"] == "infusion-pump"
    assert device["type"]["text"] == "Infusion pump"
    assert device["owner"] == {"reference": f"Organization/{hospital['icu'].pk}", "display": "ICU"}
    assert device["location"]["reference"] == f"Location/{hospital['room'].pk}"
    assert {
        "system": "https://wardwise.example/fhir/sid/tag",
        "value": hospital["pump"].tag.tag_id,
    } in device["identifier"]
    retired = get(api, f"/fhir/Device/{hospital['old'].pk}")
    assert retired["status"] == "inactive"
    missing = get(api, f"/fhir/Device/{hospital['chair'].pk}")
    assert missing["statusReason"][0]["coding"][0]["code"] == "offline"


def test_device_search_by_type_status_location_and_identifier(api, hospital):
    assert ids(get(api, "/fhir/Device?type=wheelchair")) == [str(hospital["chair"].pk)]
    inactive = get(api, "/fhir/Device?status=inactive")
    assert ids(inactive) == [str(hospital["old"].pk)]
    here = get(api, f"/fhir/Device?location=Location/{hospital['room'].pk}")
    assert set(ids(here)) == {str(hospital["pump"].pk), f"sensor-{hospital['fridge'].pk}"}
    by_tag = get(
        api,
        "/fhir/Device?identifier=https://wardwise.example/fhir/sid/tag|"
        "IBEACON:F7826DA6-4FA2-4E98-8024-BC5B71E0893E:1:1",
    )
    assert ids(by_tag) == [str(hospital["pump"].pk)]
    on_floor = get(api, f"/fhir/Device?location=floor-{hospital['floor'].pk}&_count=100")
    assert len(ids(on_floor)) == 3
    assert ids(get(api, f"/fhir/Device?organization=Organization/{hospital['icu'].pk}")) == [
        str(hospital["pump"].pk)
    ]


def test_search_pages_with_links(api, hospital):
    first = get(api, "/fhir/Device?_count=2")
    assert first["type"] == "searchset"
    assert first["total"] == 4
    assert len(first["entry"]) == 2
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert "previous" not in links
    second = get(api, links["next"].replace("http://testserver", ""))
    assert len(second["entry"]) == 2
    assert not set(ids(first)) & set(ids(second))
    assert "next" not in {link["relation"] for link in second["link"]}
    assert get(api, "/fhir/Device?_count=0")["total"] == 4


def test_locations_have_physical_types_and_part_of(api, hospital):
    room = get(api, f"/fhir/Location/{hospital['room'].pk}")
    assert room["physicalType"]["coding"][0]["code"] == "ro"
    assert room["partOf"]["reference"] == f"Location/floor-{hospital['floor'].pk}"
    assert room["managingOrganization"]["reference"] == f"Organization/{hospital['icu'].pk}"
    corridor = get(api, f"/fhir/Location/{hospital['corridor'].pk}")
    assert corridor["physicalType"]["coding"][0]["code"] == "co"
    floor = get(api, f"/fhir/Location/floor-{hospital['floor'].pk}")
    assert floor["physicalType"]["coding"][0]["code"] == "lvl"
    assert floor["partOf"]["reference"] == f"Location/building-{hospital['building'].pk}"
    building = get(api, f"/fhir/Location/building-{hospital['building'].pk}")
    assert building["physicalType"]["coding"][0]["code"] == "bu"
    children = get(api, f"/fhir/Location?partof=Location/floor-{hospital['floor'].pk}")
    assert set(ids(children)) == {str(hospital["room"].pk), str(hospital["corridor"].pk)}
    assert ids(get(api, "/fhir/Location?name=10")) == [str(hospital["room"].pk)]
    assert ids(get(api, "/fhir/Location?type=corridor")) == [str(hospital["corridor"].pk)]
    assert ids(get(api, "/fhir/Location?identifier=Main/Level%201/101")) == [
        str(hospital["room"].pk)
    ]


def test_current_temperature_and_excursions_are_observations(api, hospital):
    fridge = hospital["fridge"]
    current = get(api, f"/fhir/Observation/temperature-{fridge.pk}")
    assert current["valueQuantity"]["value"] == 4.6
    assert current["valueQuantity"]["code"] == "Cel"
    assert current["code"]["coding"][0]["code"] == "storage-temperature"
    assert current["device"]["reference"] == f"Device/sensor-{fridge.pk}"
    excursion = get(api, f"/fhir/Observation/excursion-{hospital['excursion'].pk}")
    assert excursion["interpretation"][0]["coding"][0]["code"] == "HH"
    assert excursion["status"] == "final"
    assert excursion["valueQuantity"]["value"] == 11.2
    both = get(api, f"/fhir/Observation?device=Device/sensor-{fridge.pk}")
    assert len(ids(both)) == 2
    excursions = get(api, "/fhir/Observation?code=temperature-excursion")
    assert ids(excursions) == [f"excursion-{hospital['excursion'].pk}"]
    earlier = (timezone.now() - timedelta(minutes=30)).astimezone(UTC)
    stamp = earlier.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ids(get(api, f"/fhir/Observation?date=ge{stamp}")) == [f"temperature-{fridge.pk}"]
    assert ids(get(api, f"/fhir/Observation?date=lt{stamp}")) == [
        f"excursion-{hospital['excursion'].pk}"
    ]
    in_room = get(api, f"/fhir/Observation?subject=Location/{hospital['room'].pk}")
    assert len(ids(in_room)) == 2


def test_organization_read_and_search(api, hospital):
    icu = get(api, f"/fhir/Organization/{hospital['icu'].pk}")
    assert icu["name"] == "ICU"
    assert ids(get(api, "/fhir/Organization?identifier=icu")) == [str(hospital["icu"].pk)]


def test_errors_are_operation_outcomes(api, hospital):
    missing = get(api, "/fhir/Device/999999", status=404)
    assert missing["resourceType"] == "OperationOutcome"
    unknown = get(api, "/fhir/Patient", status=404)
    assert unknown["issue"][0]["code"] == "not-found"
    bad_date = get(api, "/fhir/Observation?date=yesterday", status=400)
    assert bad_date["issue"][0]["code"] == "invalid"
    bad_count = get(api, "/fhir/Device?_count=lots", status=400)
    assert "_count" in bad_count["issue"][0]["diagnostics"]


def test_device_tokens_and_revoked_keys_are_refused(hospital):
    scanner_token = issue_token(scanner=ScannerFactory(floor=hospital["floor"]))
    for header in (f"Bearer {scanner_token}", f"Token {scanner_token}", ""):
        client = APIClient()
        if header:
            client.credentials(HTTP_AUTHORIZATION=header)
        response = client.get("/fhir/Device")
        assert response.status_code == 401, header
        assert validated(response.json())["resourceType"] == "OperationOutcome"
    key = issue_key("lab-system", BIOMED)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/fhir/Device").status_code == 200
    revoke_key("lab-system")
    assert client.get("/fhir/Device").status_code == 401


def test_a_session_without_a_role_is_forbidden(hospital):
    client = APIClient()
    client.force_login(UserFactory(username="visitor"))
    response = client.get("/fhir/Location")
    assert response.status_code == 403
    client.force_login(UserFactory(username="night-nurse", roles=[NURSE]))
    assert client.get("/fhir/Location").status_code == 200


def test_read_by_id_of_every_kind_round_trips(api, hospital):
    bundle = get(api, "/fhir/Location?_count=500")
    for entry in bundle["entry"]:
        resource = entry["resource"]
        again = get(api, f"/fhir/Location/{resource['id']}")
        assert again == resource
    assert datetime.fromisoformat(bundle["timestamp"].replace("Z", "+00:00")).tzinfo
