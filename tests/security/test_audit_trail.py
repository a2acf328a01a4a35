"""The audit trail: who changed what and when, for every record a security office asks about,
append-only, read-only in the admin."""

from __future__ import annotations

import pytest
from auditlog.context import set_extra_data
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from alerts import services
from hospital import audit
from hospital.devices import issue_token, revoke_tokens
from tests.factories import AssetFactory, ColdChainSensorFactory, ScannerFactory, TagFactory


def entries_for(instance):
    return LogEntry.objects.get_for_object(instance).order_by("timestamp", "pk")


@pytest.mark.parametrize(
    "label",
    [
        "tracking.Asset",
        "tracking.Tag",
        "tracking.Scanner",
        "environment.Sensor",
        "environment.ThresholdProfile",
        "alerts.Alert",
        "auth.User",
        "auth.Group",
        "hospital.DeviceToken",
        "integrations.IntegrationClient",
    ],
)
def test_the_records_a_security_office_asks_about_are_audited(label):
    assert auditlog.contains(apps.get_model(label))


def test_a_persons_roles_are_audited_as_many_to_many(db):
    assert "groups" in auditlog._registry[User]["m2m_fields"]


def test_an_asset_status_change_through_the_api_names_the_nurse(db, principals):
    asset = AssetFactory()
    nurse = principals["nurse"]
    response = nurse.client().post(
        f"/api/v1/assets/{asset.pk}/status/", {"status": "in-use"}, content_type="application/json"
    )
    assert response.status_code == 200
    entry = entries_for(asset).last()
    assert entry.action == LogEntry.Action.UPDATE
    assert entry.actor == nurse.user
    assert entry.changes_dict["status"] == ["available", "in-use"]
    assert abs((timezone.now() - entry.timestamp).total_seconds()) < 60


def test_admin_edits_of_tags_scanners_and_role_memberships_are_attributed(db, principals):
    admin = principals["superuser"].client()
    tag = TagFactory()
    scanner = ScannerFactory()
    nurse = principals["nurse"].user
    biomed = Group.objects.get(name="biomed")

    response = admin.post(
        f"/admin/auth/user/{nurse.pk}/change/",
        {
            "username": nurse.username,
            "is_active": "on",
            "groups": [g.pk for g in nurse.groups.all()] + [biomed.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content[:500]
    roles = [e for e in entries_for(nurse) if "groups" in (e.changes_dict or {})]
    assert roles, "the role change is in the trail"
    assert roles[-1].actor == principals["superuser"].user
    assert "biomed" in str(roles[-1].changes_dict["groups"])

    tag.battery_pct = 50
    tag.tag_id = "rfid:e2003412dc03011812345678"
    with set_extra_data({"actor": principals["biomed-staff"].user}):
        tag.save()
        scanner.description = "moved to ward 4"
        scanner.save()
    assert entries_for(tag).last().actor == principals["biomed-staff"].user
    assert "battery_pct" not in entries_for(tag).last().changes_dict
    assert entries_for(scanner).last().changes_dict["description"][1] == "moved to ward 4"


def test_thresholds_sensors_and_alert_acknowledgements_are_attributed(db, principals):
    sensor = ColdChainSensorFactory(serial="audit-fridge")
    profile = sensor.profile
    facilities = principals["facilities-staff"]
    with set_extra_data({"actor": facilities.user}):
        profile.temperature_max_c = 7.5
        profile.save()
    assert entries_for(profile).last().actor == facilities.user

    alert = services.open_alert(
        source="test",
        kind="temperature-high",
        subject=f"sensor:{sensor.pk}",
        title="fridge",
        severity="warning",
        started_at=timezone.now(),
        value=9.0,
        sensor=sensor,
    )
    assert entries_for(alert).first().action == LogEntry.Action.CREATE
    assert entries_for(alert).first().actor is None  # the rule engine: the system
    response = facilities.client().post(
        f"/api/v1/alerts/{alert.pk}/acknowledge/",
        {"comment": "on my way"},
        content_type="application/json",
    )
    assert response.status_code == 200
    acknowledged = entries_for(alert).last()
    assert acknowledged.actor == facilities.user
    assert "acknowledged_at" in acknowledged.changes_dict


def test_token_issue_and_revocation_are_audited_without_the_secret(db):
    scanner = ScannerFactory()
    plaintext = issue_token(scanner=scanner)
    first = scanner.tokens.get()
    issue_token(scanner=scanner)
    assert revoke_tokens(scanner=scanner) == 1
    trail = LogEntry.objects.filter(
        content_type__app_label="hospital", content_type__model="devicetoken"
    )
    assert trail.filter(action=LogEntry.Action.CREATE).count() == 2
    revocations = [
        e
        for e in trail.filter(action=LogEntry.Action.UPDATE)
        if "revoked_at" in (e.changes_dict or {})
    ]
    assert len(revocations) == 2
    assert str(first.pk) in {e.object_pk for e in revocations}
    text = " ".join(str(e.changes) for e in trail)
    assert plaintext.rsplit("_", 1)[1] not in text
    assert first.secret_hash not in text


def test_an_integration_key_call_is_attributed_to_its_service_user(db, principals):
    asset = AssetFactory()
    service = principals["biomed"].user
    with set_extra_data({"actor": None}):
        audit.attribute_to(service)
        asset.name = "renamed by the CMMS"
        asset.save()
    assert entries_for(asset).last().actor == service


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_the_trail_is_append_only_in_the_database(db):
    asset = AssetFactory()
    entry = entries_for(asset).first()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LogEntry.objects.filter(pk=entry.pk).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LogEntry.objects.filter(pk=entry.pk).update(object_repr="forged")
    assert LogEntry.objects.filter(pk=entry.pk, object_repr=entry.object_repr).exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_deleting_a_person_keeps_their_entries(db):
    person = User.objects.create(username="leaver")
    asset = AssetFactory()
    with set_extra_data({"actor": person}):
        asset.name = "changed by the leaver"
        asset.save()
    entry = entries_for(asset).last()
    person.delete()
    entry.refresh_from_db()
    assert entry.actor is None
    assert entry.changes_dict["name"][1] == "changed by the leaver"


def test_the_admin_shows_the_trail_read_only(db, principals):
    asset = AssetFactory()
    entry = entries_for(asset).first()
    for name in ("admin-staff", "superuser"):
        client = principals[name].client()
        assert client.get("/admin/auditlog/logentry/").status_code == 200
        assert client.get(f"/admin/auditlog/logentry/{entry.pk}/change/").status_code == 200
        assert client.get(f"/admin/auditlog/logentry/{entry.pk}/delete/").status_code == 403
        response = client.post(
            "/admin/auditlog/logentry/",
            {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
        )
        assert LogEntry.objects.filter(pk=entry.pk).exists()
        assert response.status_code in (200, 302)
    for name in ("biomed-staff", "facilities-staff"):
        assert principals[name].client().get("/admin/auditlog/logentry/").status_code == 403
