"""Maintenance for biomed: schedules per type and per asset, due and overdue lists with where
each asset is, work orders through the API, recalls by model and serial range, due near me."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import AssetFactory, AssetLocationFactory, FloorFactory, ZoneFactory
from workflows import maintenance
from workflows.models import (
    MaintenanceDue,
    MaintenanceSchedule,
    RecallCampaign,
    RecallUnit,
    WorkOrder,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(ward):
    today = timezone.localdate()
    other_floor = FloorFactory(name="Ward 9", building=ward["floor"].building)
    far_room = ZoneFactory(floor=other_floor, name="Room 901")
    pumps = []
    for i, serial in enumerate(["SN-98", "SN-99", "SN-100", "SN-120", "SN-121"]):
        pump = AssetFactory(
            name=f"Pump {serial}",
            asset_type=ward["pumps"],
            serial_number=serial,
            manufacturer="BD",
            model="Alaris 8100",
        )
        floor, zone = (
            (ward["floor"], ward["zones"]["room"]) if i % 2 == 0 else (other_floor, far_room)
        )
        AssetLocationFactory(asset=pump, floor=floor, zone=zone)
        pumps.append(pump)
    schedule = MaintenanceSchedule.objects.create(
        name="Pump annual PM",
        asset_type=ward["pumps"],
        interval_days=365,
        starts_on=today - timedelta(days=3),
    )
    return {"pumps": pumps, "schedule": schedule, "today": today, "far": other_floor}


def test_due_and_overdue_list_with_locations_and_work_orders(fleet, client, biomed):
    assert maintenance.refresh_maintenance_due() == 5
    due = MaintenanceDue.objects.get(asset=fleet["pumps"][0])
    assert due.due_on == fleet["today"] - timedelta(days=3)
    assert WorkOrder.objects.filter(kind="preventive", status="open").count() == 5
    maintenance.refresh_maintenance_due()
    assert WorkOrder.objects.filter(kind="preventive").count() == 5, "one open order per item"
    client.force_login(biomed)
    body = client.get("/api/v1/workflows/maintenance/due/").json()
    assert body["count"] == 5
    first = body["results"][0]
    assert first["state"] == "overdue"
    assert first["days_overdue"] == 3
    assert first["location"]["zone"] in ("Room 1", "Room 901")
    assert first["work_order_id"] is not None

    order = WorkOrder.objects.get(asset=fleet["pumps"][0], kind="preventive")
    response = client.patch(
        f"/api/v1/workflows/maintenance/work-orders/{order.pk}/",
        {
            "status": "done",
            "notes": "battery replaced, occlusion test passed",
            "assignee": biomed.pk,
        },
        "application/json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["completed_at"] is not None
    maintenance.refresh_maintenance_due()
    due.refresh_from_db()
    assert due.due_on == fleet["today"] + timedelta(days=365)
    assert client.get("/api/v1/workflows/maintenance/due/").json()["count"] == 4
    asset = client.get(f"/api/v1/assets/{fleet['pumps'][0].pk}/").json()
    assert asset["maintenance_due"] == str(fleet["today"] + timedelta(days=365))


def test_a_schedule_for_one_asset_and_a_calendar_schedule(fleet):
    pump = fleet["pumps"][1]
    today = fleet["today"]
    MaintenanceSchedule.objects.create(
        name="Electrical safety",
        asset=pump,
        months=[today.month],
        day_of_month=today.day,
        starts_on=today,
    )
    maintenance.refresh_maintenance_due()
    items = [i for i in maintenance.due_items() if i.asset_id == pump.pk]
    assert sorted(i.due_on for i in items) == [today - timedelta(days=3), today]


def test_maintenance_due_near_me_is_the_floor_i_am_on(fleet, client, biomed):
    client.force_login(biomed)
    assert client.get("/api/v1/workflows/maintenance/near-me/").status_code == 400
    near = client.get(f"/api/v1/workflows/maintenance/near-me/?floor={fleet['far'].pk}").json()
    assert {row["asset"] for row in near["results"]} == {"Pump SN-99", "Pump SN-120"}
    assert all(row["location"]["floor_id"] == fleet["far"].pk for row in near["results"])


def test_recall_marks_the_serial_range_and_shows_where_each_unit_is(fleet, ward, client, biomed):
    AssetFactory(name="Other model", model="Alaris 8000", serial_number="SN-100")
    client.force_login(biomed)
    response = client.post(
        "/api/v1/workflows/maintenance/recalls/",
        {
            "reference": "FSN-2026-04",
            "title": "Keypad failure",
            "model": "alaris 8100",
            "serial_first": "SN-99",
            "serial_last": "SN-120",
        },
        "application/json",
    )
    assert response.status_code == 201, response.content
    campaign = RecallCampaign.objects.get(reference="FSN-2026-04")
    units = client.get(f"/api/v1/workflows/maintenance/recalls/{campaign.pk}/units/").json()
    assert [u["serial_number"] for u in units] == ["SN-100", "SN-120", "SN-99"]
    assert all(u["status"] == "affected" and u["work_order_status"] == "open" for u in units)
    assert {u["location"]["floor_id"] for u in units} == {fleet["far"].pk, ward["floor"].pk}
    AssetFactory(name="New pump", model="Alaris 8100", serial_number="SN-110")
    again = client.post(f"/api/v1/workflows/maintenance/recalls/{campaign.pk}/launch/")
    assert again.json() == {"added": 1}
    unit = RecallUnit.objects.get(campaign=campaign, asset__serial_number="SN-100")
    unit.work_order.status = "done"
    unit.work_order.save()
    unit.refresh_from_db()
    assert unit.status == "remediated"


def test_maintenance_api_is_for_biomed(client, nurse, fleet):
    client.force_login(nurse)
    for url in (
        "maintenance/due/",
        "maintenance/schedules/",
        "maintenance/work-orders/",
        "maintenance/recalls/",
        "maintenance/near-me/?floor=1",
    ):
        assert client.get(f"/api/v1/workflows/{url}").status_code == 403, url


def test_schedule_validation(client, biomed, ward):
    client.force_login(biomed)
    both = {"name": "x", "asset_type": ward["pumps"].pk, "interval_days": 30, "months": [1]}
    assert (
        client.post(
            "/api/v1/workflows/maintenance/schedules/", both, "application/json"
        ).status_code
        == 400
    )
    bad_month = {"name": "x", "asset_type": ward["pumps"].pk, "months": [13]}
    assert (
        client.post(
            "/api/v1/workflows/maintenance/schedules/", bad_month, "application/json"
        ).status_code
        == 400
    )
