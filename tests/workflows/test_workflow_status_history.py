"""The status history is complete: every change of an asset's status is one history row,
whatever made it. Wardwise's own paths (status buttons and API, admin bulk actions, CSV import,
zone rules) attribute their row; a change made outside them (a queryset `.update()`,
`bulk_update`, SQL) is recorded by the database as "changed outside Wardwise workflows" and the
reconciliation gives it its audit entry, pushes it to the floor map and re-checks par. A change
that bypassed the database trigger is still found, by comparing each asset with its history."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
import tablib
from auditlog.models import LogEntry
from django.contrib.auth.models import Permission
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from alerts.models import Alert
from integrations.resources import AssetResource
from tests.factories import (
    AssetFactory,
    AssetLocationFactory,
    AssetTypeFactory,
    DepartmentFactory,
    UserFactory,
    ZoneFactory,
)
from tracking import live
from tracking.models import Asset
from workflows import alerting, status, tasks, triggers, utilisation
from workflows.models import ParLevel, StatusChange

pytestmark = pytest.mark.django_db
OUTSIDE = "changed outside Wardwise workflows"


def history(asset) -> list[tuple[str, str, str]]:
    return list(
        StatusChange.objects.filter(asset=asset)
        .order_by("pk")
        .values_list("old_status", "new_status", "source")
    )


def settled() -> object:
    """A moment after which fresh outside changes are left to the reconciliation."""
    return timezone.now() + timedelta(seconds=status.RECONCILE_AFTER_S + 1)


@contextlib.contextmanager
def trigger_bypassed():
    """What a bulk load or restore with triggers disabled does."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
        yield
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")
    else:
        triggers.uninstall(connection)
        yield
        triggers.ensure_installed(using="default")


@pytest.fixture
def published(monkeypatch):
    calls = []
    monkeypatch.setattr(live, "publish_status_change", lambda *args: calls.append(args))
    return calls


def test_a_queryset_update_is_recorded_then_audited_once_as_changed_outside_wardwise():
    pump = AssetFactory(name="Pump Q1")
    chair = AssetFactory(name="Chair Q2", status="in-use")
    AssetFactory(name="Pump Q3", status="maintenance")

    assert Asset.objects.filter(name__startswith="P").update(status="maintenance") == 2
    Asset.objects.filter(pk=chair.pk).update(status="needs-cleaning")

    assert history(pump) == [("available", "maintenance", "outside")]
    assert history(chair) == [("in-use", "needs-cleaning", "outside")]
    row = StatusChange.objects.get(asset=pump)
    assert (row.note, row.actor, row.needs_reconciling) == (OUTSIDE, None, True)
    assert abs((timezone.now() - row.at).total_seconds()) < 60

    assert status.reconcile_status_history() == {"drift": 0, "audited": 0}, "not settled yet"
    assert status.reconcile_status_history(now=settled()) == {"drift": 0, "audited": 2}
    entry = LogEntry.objects.get_for_object(pump).get(additional_data__source="outside")
    assert entry.action == LogEntry.Action.UPDATE
    assert entry.changes_dict["status"] == ["available", "maintenance"]
    assert entry.actor is None
    assert entry.additional_data["status_change_id"] == row.pk
    assert entry.additional_data["note"] == OUTSIDE
    assert status.reconcile_status_history(now=settled()) == {"drift": 0, "audited": 0}
    assert LogEntry.objects.filter(additional_data__source="outside").count() == 2


def test_bulk_update_and_sql_are_recorded_in_order():
    pump = AssetFactory(name="Pump S1")
    pump.status = "in-use"
    Asset.objects.bulk_update([pump], ["status"])
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tracking_asset SET status = %s WHERE id = %s", ["needs-cleaning", pump.pk]
        )
        cursor.execute("UPDATE tracking_asset SET notes = %s WHERE id = %s", ["dent", pump.pk])
    assert history(pump) == [
        ("available", "in-use", "outside"),
        ("in-use", "needs-cleaning", "outside"),
    ]


def test_an_outside_change_reaches_the_floor_map_and_the_par_level(
    published, django_capture_on_commit_callbacks
):
    icu = DepartmentFactory(name="ICU")
    clean = ZoneFactory(name="Clean utility", kind="clean-utility", department=icu)
    pumps = AssetTypeFactory(slug="infusion-pump")
    pump = AssetFactory(name="Pump P1", asset_type=pumps)
    AssetLocationFactory(asset=pump, floor=clean.floor, zone=clean)
    ParLevel.objects.create(asset_type=pumps, department=icu, target=1, critical_min=1)

    Asset.objects.filter(pk=pump.pk).update(status="maintenance")
    assert not Alert.objects.filter(kind=alerting.PAR_CRITICAL).exists()
    with django_capture_on_commit_callbacks(execute=True):
        status.reconcile_status_history(now=settled())

    assert published == [(pump.pk, clean.floor_id, "maintenance", "present")]
    alert = Alert.objects.get(kind=alerting.PAR_CRITICAL)
    assert alert.severity == "critical", "the only pump of the ICU is out of service"


def test_wardwise_paths_attribute_their_own_row_and_leave_nothing_to_reconcile(client):
    nurse = UserFactory(username="nurse-h", roles=["nurse"])
    pump = AssetFactory(name="Pump W1")
    client.force_login(nurse)
    response = client.post(
        f"/api/v1/assets/{pump.pk}/status/", {"status": "in-use"}, "application/json"
    )
    assert response.status_code == 200, response.content
    pump.refresh_from_db()
    pump.name = "Pump W1 (renamed)"
    pump.save()
    pump.status = "needs-cleaning"
    pump.save(update_fields=["status"])

    assert history(pump) == [
        ("available", "in-use", "saved"),
        ("in-use", "needs-cleaning", "saved"),
    ]
    first = StatusChange.objects.filter(asset=pump).first()
    assert (first.actor, first.needs_reconciling, first.note) == (nurse, False, "")
    assert status.reconcile_status_history(now=settled()) == {"drift": 0, "audited": 0}
    assert not LogEntry.objects.filter(additional_data__source="outside").exists()


def test_set_status_changes_many_assets_with_history_and_audit(
    published, django_capture_on_commit_callbacks
):
    biomed = UserFactory(username="bio-set", roles=["biomed"])
    located = AssetFactory(name="Pump B1")
    AssetLocationFactory(asset=located)
    unplaced = AssetFactory(name="Pump B2", status="in-use")
    already = AssetFactory(name="Pump B3", status="maintenance")

    with django_capture_on_commit_callbacks(execute=True):
        changes = status.set_status(
            [located.pk, unplaced.pk, already.pk], "maintenance", actor=biomed, note="recall"
        )

    assert sorted(c.asset_id for c in changes) == [located.pk, unplaced.pk]
    assert history(located) == [("available", "maintenance", "bulk")]
    assert history(unplaced) == [("in-use", "maintenance", "bulk")]
    assert history(already) == []
    row = StatusChange.objects.get(asset=unplaced)
    assert (row.actor, row.note, row.needs_reconciling) == (biomed, "recall", False)
    entry = LogEntry.objects.get_for_object(unplaced).get(additional_data__source="bulk")
    assert entry.changes_dict["status"] == ["in-use", "maintenance"]
    assert entry.actor == biomed
    assert entry.additional_data["status_change_id"] == row.pk
    assert [call[0] for call in published] == [located.pk], "only located assets are on a map"
    with pytest.raises(ValueError, match="unknown status"):
        status.set_status([located.pk], "lost")


def test_admin_bulk_actions_go_through_set_status_and_respect_roles(client):
    biomed = UserFactory(username="bio-admin", roles=["biomed"], is_staff=True)
    pumps = [AssetFactory(name=f"Pump A{i}") for i in range(2)]
    url = reverse("admin:tracking_asset_changelist")
    client.force_login(biomed)
    response = client.post(
        url, {"action": "set_status_maintenance", "_selected_action": [p.pk for p in pumps]}
    )
    assert response.status_code == 302, response.content[:500]
    for pump in pumps:
        pump.refresh_from_db()
        assert pump.status == "maintenance"
        assert history(pump) == [("available", "maintenance", "bulk")]
    row = StatusChange.objects.get(asset=pumps[0])
    assert (row.actor, row.note) == (biomed, "admin bulk action: In maintenance")
    assert LogEntry.objects.get_for_object(pumps[0]).get(additional_data__source="bulk").actor == (
        biomed
    )

    facilities = UserFactory(username="fac-admin", roles=["facilities"], is_staff=True)
    facilities.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_asset", "change_asset"])
    )
    client.force_login(facilities)
    offered = client.get(url).content.decode()
    assert 'value="set_status_available"' in offered
    assert 'value="set_status_retired"' not in offered, "only managers take assets out"
    client.post(url, {"action": "set_status_retired", "_selected_action": [pumps[0].pk]})
    pumps[0].refresh_from_db()
    assert pumps[0].status == "maintenance"


def test_a_csv_import_is_in_the_history_and_a_dry_run_is_not():
    AssetTypeFactory(slug="infusion-pump")
    pump = AssetFactory(name="Pump C1")
    header = "name,type,department,tag,serial_number,manufacturer,model,status,notes\n"
    dataset = tablib.Dataset().load(header + "Pump C1,infusion-pump,,,,,,in-use,\n", format="csv")

    assert not AssetResource().import_data(dataset, dry_run=True).has_errors()
    assert history(pump) == []
    assert not AssetResource().import_data(dataset, dry_run=False).has_errors()
    assert history(pump) == [("available", "in-use", "saved")]


def test_a_change_that_bypassed_the_trigger_is_found_by_comparing_with_the_history():
    pump = AssetFactory(name="Pump D1")
    status.set_status([pump.pk], "in-use")
    with trigger_bypassed():
        Asset.objects.filter(pk=pump.pk).update(status="retired")
    assert history(pump) == [("available", "in-use", "bulk")]

    result = tasks.reconcile_status_history.apply().get()

    assert result == {"drift": 1, "audited": 1}
    assert history(pump)[-1] == ("in-use", "retired", "outside")
    found = StatusChange.objects.filter(asset=pump).last()
    assert found.note.startswith(f"{OUTSIDE}, found by the reconciliation: changed between")
    assert not found.needs_reconciling
    entry = LogEntry.objects.get_for_object(pump).get(additional_data__source="outside")
    assert entry.additional_data["status_change_id"] == found.pk
    assert tasks.reconcile_status_history.apply().get() == {"drift": 0, "audited": 0}


def test_without_the_trigger_wardwise_still_writes_its_own_rows_once():
    triggers.uninstall(connection)
    pump = AssetFactory(name="Pump N1")
    status.set_status([pump.pk], "in-use", note="no trigger")
    pump.refresh_from_db()
    pump.status = "available"
    pump.save()
    assert history(pump) == [("available", "in-use", "bulk"), ("in-use", "available", "saved")]
    assert not StatusChange.objects.filter(asset=pump, needs_reconciling=True).exists()


def test_every_migrate_puts_a_dropped_trigger_back():
    triggers.uninstall(connection)
    assert not triggers.installed(connection)
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    assert triggers.installed(connection)
    pump = AssetFactory(name="Pump T1")
    Asset.objects.filter(pk=pump.pk).update(status="in-use")
    assert history(pump) == [("available", "in-use", "outside")]


def test_utilisation_counts_a_status_changed_outside_wardwise():
    pump = AssetFactory(name="Pump U1")
    start = timezone.now() - timedelta(hours=2)
    Asset.objects.filter(pk=pump.pk).update(status="in-use")
    end = timezone.now() + timedelta(hours=1)
    (row,) = utilisation.report(start, end, "asset", now=end)["rows"]
    assert row["idle_h"] == pytest.approx(2.0, abs=0.02)
    assert row["in_use_h"] == pytest.approx(1.0, abs=0.02)
