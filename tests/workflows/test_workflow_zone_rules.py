"""Zone rules through the real path: readings in, the pipeline's zone change, the rule fires,
the status changes, the change is attributed to its rule in the audit trail and pushed live."""

from __future__ import annotations

from datetime import timedelta

import pytest
from auditlog.models import LogEntry

from tracking import live
from tracking.models import AssetLocation, ZoneStay
from workflows import zones
from workflows.models import StatusChange, ZoneRule

pytestmark = pytest.mark.django_db


@pytest.fixture
def pushed(monkeypatch):
    calls = []
    original = live.publish_status_change

    def record(asset_id, floor_id, status, presence):
        calls.append((asset_id, floor_id, status, presence))
        original(asset_id, floor_id, status, presence)

    monkeypatch.setattr(live, "publish_status_change", record)
    return calls


def test_default_rules_exist_out_of_the_box():
    names = set(ZoneRule.objects.values_list("name", flat=True))
    assert {
        "Soiled utility: needs cleaning",
        "Clean utility after cleaning: available",
        "Patient room for 30 minutes: in use",
    } <= names


def test_soiled_then_clean_utility_cycles_the_status(
    ward, radio, pushed, django_capture_on_commit_callbacks
):
    pump = radio.tagged("Pump 1", status="in-use")
    with django_capture_on_commit_callbacks(execute=True):
        radio.place(pump, "room")
        radio.place(pump, "soiled-utility")
    pump.refresh_from_db()
    assert pump.status == "needs-cleaning"
    change = StatusChange.objects.get(asset=pump)
    assert (change.old_status, change.new_status) == ("in-use", "needs-cleaning")
    assert change.rule.name == "Soiled utility: needs cleaning"
    assert change.zone == ward["zones"]["soiled-utility"]
    assert change.stay == ZoneStay.objects.get(asset=pump, left_at__isnull=True)
    assert change.actor is None
    assert (change.source, change.needs_reconciling) == ("zone-rule", False)
    entry = LogEntry.objects.get_for_object(pump).filter(additional_data__source="zone-rule").get()
    assert entry.changes_dict["status"] == ["in-use", "needs-cleaning"]
    assert entry.additional_data["rule"] == "Soiled utility: needs cleaning"
    assert entry.actor is None
    assert entry.additional_data["status_change_id"] == change.pk
    floor_id = ward["floor"].pk
    assert (pump.pk, floor_id, "needs-cleaning", "present") in pushed

    with django_capture_on_commit_callbacks(execute=True):
        radio.place(pump, "clean-utility")
    pump.refresh_from_db()
    assert pump.status == "available"
    last = StatusChange.objects.filter(asset=pump).last()
    assert last.rule.name == "Clean utility after cleaning: available"
    assert (pump.pk, floor_id, "available", "present") in pushed


def test_clean_utility_leaves_an_in_use_pump_alone(ward, radio):
    pump = radio.tagged("Pump 2", status="in-use")
    radio.place(pump, "clean-utility")
    pump.refresh_from_db()
    assert pump.status == "in-use"
    assert not StatusChange.objects.filter(asset=pump).exists()


def test_replaying_the_same_readings_changes_nothing_twice(ward, radio):
    pump = radio.tagged("Pump 3")
    radio.place(pump, "soiled-utility")
    radio.place(pump, "soiled-utility")
    assert StatusChange.objects.filter(asset=pump).count() == 1


def test_dwell_in_a_patient_room_becomes_in_use_once_per_stay(ward, radio, pushed):
    pump = radio.tagged("Pump 4")
    radio.place(pump, "room")
    stay = ZoneStay.objects.get(asset=pump, left_at__isnull=True)
    AssetLocation.objects.filter(asset=pump).update(last_seen_at=stay.entered_at)
    assert zones.evaluate_dwell_rules(now=stay.entered_at + timedelta(minutes=29)) == 0
    assert zones.evaluate_dwell_rules(now=stay.entered_at + timedelta(minutes=31)) == 1
    pump.refresh_from_db()
    assert pump.status == "in-use"
    change = StatusChange.objects.get(asset=pump)
    assert change.rule.name == "Patient room for 30 minutes: in use"
    assert change.at == stay.entered_at + timedelta(minutes=30)
    pump.status = "available"
    pump.save()
    assert zones.evaluate_dwell_rules(now=stay.entered_at + timedelta(minutes=90)) == 0
    pump.refresh_from_db()
    assert pump.status == "available", "a person's change wins over the rule for this stay"


def test_a_person_marking_it_available_during_the_stay_stops_the_dwell_rule(ward, radio, biomed):
    pump = radio.tagged("Pump 5", status="needs-cleaning")
    radio.place(pump, "room")
    stay = ZoneStay.objects.get(asset=pump, left_at__isnull=True)
    from tracking.status import change_status

    change_status(pump, "available", biomed)
    assert zones.evaluate_dwell_rules(now=stay.entered_at + timedelta(hours=2)) == 0
    pump.refresh_from_db()
    assert pump.status == "available"


def test_missing_assets_are_not_assumed_in_use(ward, radio):
    pump = radio.tagged("Pump 6")
    radio.place(pump, "room")
    stay = ZoneStay.objects.get(asset=pump, left_at__isnull=True)
    AssetLocation.objects.filter(asset=pump).update(presence="missing")
    assert zones.evaluate_dwell_rules(now=stay.entered_at + timedelta(hours=1)) == 0


def test_manual_status_changes_are_recorded_with_the_person(ward, radio, client, nurse):
    pump = radio.tagged("Pump 7")
    client.force_login(nurse)
    response = client.post(
        f"/api/v1/assets/{pump.pk}/status/", {"status": "in-use"}, "application/json"
    )
    assert response.status_code == 200, response.content
    change = StatusChange.objects.get(asset=pump)
    assert (change.old_status, change.new_status, change.actor) == ("available", "in-use", nurse)
    assert change.rule is None


def test_a_rule_on_one_zone_overrides_the_kind_rule(ward, radio):
    ZoneRule.objects.create(
        name="Decontamination bay: maintenance check",
        zone=ward["zones"]["soiled-utility"],
        trigger="enter",
        to_status="available",
        from_statuses=["in-use"],
    )
    pump = radio.tagged("Pump 8", status="in-use")
    radio.place(pump, "soiled-utility")
    pump.refresh_from_db()
    assert pump.status == "available"
    assert (
        StatusChange.objects.get(asset=pump).rule_name == "Decontamination bay: maintenance check"
    )


def test_zone_rules_api_is_for_biomed_and_validates(client, biomed, nurse):
    client.force_login(nurse)
    assert client.get("/api/v1/workflows/zone-rules/").status_code == 403
    client.force_login(biomed)
    assert client.get("/api/v1/workflows/zone-rules/").json()["count"] >= 3
    bad = client.post(
        "/api/v1/workflows/zone-rules/",
        {"name": "x", "trigger": "dwell", "zone_kind": "room", "to_status": "in-use"},
        "application/json",
    )
    assert bad.status_code == 400
    good = client.post(
        "/api/v1/workflows/zone-rules/",
        {
            "name": "OR 15 min",
            "trigger": "dwell",
            "zone_kind": "operating-room",
            "to_status": "in-use",
            "dwell_min": 15,
            "from_statuses": ["available"],
        },
        "application/json",
    )
    assert good.status_code == 201, good.content
    history = client.get("/api/v1/workflows/status-changes/")
    assert history.status_code == 200
