"""Workflow alerts and status changes arrive live over the real websockets: the project's ASGI
application (origin check, session sign-in, role checks) and its channel layer (Redis when
REDIS_URL is set). Maintenance falling due and overdue and being done, a par level going
critical and recovering on the facilities console; admin bulk actions and changes made outside
Wardwise on the nurses' floor map."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from hospital.asgi import application
from tests.factories import (
    AssetFactory,
    AssetLocationFactory,
    AssetTypeFactory,
    DepartmentFactory,
    UserFactory,
    ZoneFactory,
)
from tracking.models import Asset
from workflows import alerting, maintenance, status, tasks
from workflows.models import MaintenanceSchedule, ParLevel, WorkOrder

# Consumers read the database from other threads: the data must be committed.
pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://localhost")


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def session_headers(user) -> list[tuple[bytes, bytes]]:
    cookie = signed_in(user).cookies[settings.SESSION_COOKIE_NAME].value
    return [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()), ORIGIN]


async def connect(path: str, headers) -> tuple[WebsocketCommunicator, bool, int | None]:
    ws = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await ws.connect(timeout=5)
    return ws, connected, code


async def until(ws, event: str, limit: int = 4) -> list[dict]:
    """Messages up to and including the first with `event` (a clear is "updated" then
    "resolved")."""
    seen = []
    for _ in range(limit):
        seen.append(await ws.receive_json_from(timeout=5))
        if seen[-1].get("event") == event:
            return seen
    raise AssertionError(f"no {event!r} among {seen}")


def test_the_alert_console_refuses_anonymous_clients_and_nurses():
    nurse = UserFactory(username="nurse-live", roles=["nurse"])
    anonymous, signed_in_nurse = [ORIGIN], session_headers(nurse)

    async def run():
        codes = []
        for headers in (anonymous, signed_in_nurse):
            ws, connected, code = await connect("/ws/alerts/", headers)
            codes.append((connected, code))
            await ws.disconnect()
        return codes

    assert async_to_sync(run)() == [(False, 4403), (False, 4403)]


def test_maintenance_falling_due_turning_overdue_and_done_arrives_on_the_console():
    console = UserFactory(username="fac-live", roles=["facilities"])
    technician = signed_in(UserFactory(username="bio-live", roles=["biomed"]))
    today = timezone.localdate()
    pump = AssetFactory(name="Pump L1", asset_type=AssetTypeFactory(slug="infusion-pump"))
    MaintenanceSchedule.objects.create(
        name="Pump PM",
        asset=pump,
        interval_days=180,
        starts_on=today - timedelta(days=3),
        alert_days_before=7,
    )
    tasks.refresh_maintenance_due.apply()
    order = WorkOrder.objects.get(asset=pump, kind="preventive")
    headers = session_headers(console)

    async def run():
        ws, connected, _ = await connect("/ws/alerts/", headers)
        assert connected
        assert (await ws.receive_json_from(timeout=5))["type"] == "snapshot"
        check = database_sync_to_async(maintenance.check_maintenance_alerts)
        await check(today=today - timedelta(days=5))
        due = await ws.receive_json_from(timeout=5)
        await database_sync_to_async(tasks.check_maintenance_alerts.apply)()
        overdue = await ws.receive_json_from(timeout=5)
        await database_sync_to_async(tasks.check_maintenance_alerts.apply)()
        quiet = await ws.receive_nothing(timeout=0.5)
        response = await database_sync_to_async(technician.patch)(
            f"/api/v1/workflows/maintenance/work-orders/{order.pk}/",
            {"status": "done"},
            "application/json",
        )
        done = await until(ws, "resolved")
        await ws.disconnect()
        return due, overdue, quiet, response.status_code, done

    due, overdue, quiet, patched, done = async_to_sync(run)()
    assert due["event"] == "opened"
    alert = due["alert"]
    assert (alert["kind"], alert["severity"], alert["last_value"]) == (
        alerting.MAINTENANCE_DUE,
        "info",
        -2.0,
    )
    assert "due in 2 days" in alert["message"]
    assert overdue["event"] == "updated"
    assert overdue["alert"]["id"] == alert["id"]
    assert (overdue["alert"]["severity"], overdue["alert"]["last_value"]) == ("warning", 3.0)
    assert quiet, "the next check of the same day sends nothing"
    assert patched == 200
    assert done[-1]["alert"]["id"] == alert["id"]
    assert done[-1]["alert"]["state"] == "resolved"


def test_a_par_level_going_critical_and_recovering_arrives_on_the_console():
    console = UserFactory(username="fac-par", roles=["facilities"])
    nurse = signed_in(UserFactory(username="nurse-par", roles=["nurse"]))
    icu = DepartmentFactory(name="ICU")
    clean = ZoneFactory(name="Clean utility", kind="clean-utility", department=icu)
    pumps = AssetTypeFactory(slug="infusion-pump")
    pump = AssetFactory(name="Pump P1", asset_type=pumps)
    AssetLocationFactory(asset=pump, floor=clean.floor, zone=clean)
    par = ParLevel.objects.create(asset_type=pumps, department=icu, target=2, critical_min=1)
    headers = session_headers(console)
    url = f"/api/v1/assets/{pump.pk}/status/"

    async def run():
        ws, connected, _ = await connect("/ws/alerts/", headers)
        assert connected
        await ws.receive_json_from(timeout=5)
        post = database_sync_to_async(nurse.post)
        taken = await post(url, {"status": "in-use"}, "application/json")
        opened = await ws.receive_json_from(timeout=5)
        back = await post(url, {"status": "available"}, "application/json")
        cleared = await until(ws, "resolved")
        await ws.disconnect()
        return taken.status_code, opened, back.status_code, cleared

    taken, opened, back, cleared = async_to_sync(run)()
    assert (taken, back) == (200, 200)
    assert opened["event"] == "opened"
    assert opened["alert"]["kind"] == alerting.PAR_CRITICAL
    assert opened["alert"]["subject"] == f"par:{par.pk}"
    assert opened["alert"]["severity"] == "critical"
    assert cleared[-1]["alert"]["id"] == opened["alert"]["id"]


def test_bulk_and_outside_status_changes_reach_the_floor_map():
    nurse = UserFactory(username="nurse-map", roles=["nurse"])
    manager = signed_in(UserFactory(username="bio-map", roles=["biomed"], is_staff=True))
    room = ZoneFactory(name="Room 5")
    pump = AssetFactory(name="Pump F1")
    AssetLocationFactory(asset=pump, floor=room.floor, zone=room)
    headers = session_headers(nurse)

    def bulk_action():
        return manager.post(
            reverse("admin:tracking_asset_changelist"),
            {"action": "set_status_maintenance", "_selected_action": [pump.pk]},
        )

    def changed_outside_and_reconciled():
        Asset.objects.filter(pk=pump.pk).update(status="available")
        return status.reconcile_status_history(now=timezone.now() + timedelta(seconds=30))

    async def run():
        ws, connected, _ = await connect(f"/ws/floors/{room.floor_id}/", headers)
        assert connected
        assert (await ws.receive_json_from(timeout=5))["type"] == "snapshot"
        response = await database_sync_to_async(bulk_action)()
        bulk = await ws.receive_json_from(timeout=5)
        reconciled = await database_sync_to_async(changed_outside_and_reconciled)()
        outside = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        return response.status_code, bulk, reconciled, outside

    code, bulk, reconciled, outside = async_to_sync(run)()
    assert code == 302
    assert bulk["type"] == "updates"
    assert [(a["asset_id"], a["status"]) for a in bulk["assets"]] == [(pump.pk, "maintenance")]
    assert reconciled == {"drift": 0, "audited": 1}
    assert [(a["asset_id"], a["status"]) for a in outside["assets"]] == [(pump.pk, "available")]
