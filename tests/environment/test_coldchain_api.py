"""The people's API, the admin, commands and the database-down path of the cold chain."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from alerts import services
from alerts.models import Alert
from environment.models import EnvironmentReading, ImmutableRecord, ReadingAnnotation
from hospital.devices import verify_token
from tests.coldchain import minutes_ago, reading

pytestmark = pytest.mark.django_db


def upload(post, sensor, points):
    body = {"readings": [reading(sensor, minutes_ago(m), t) for m, t in points]}
    assert post(sensor.token, body).status_code == 202


@pytest.fixture
def staff(client, facilities_user):
    client.force_login(facilities_user)
    return client


def test_sensor_list_shows_latest_values_and_status(fridge, post, staff):
    upload(post, fridge, [(2, 4.0), (1, 4.5)])
    body = staff.get("/api/v1/sensors/").json()
    assert body["count"] == 1
    item = body["results"][0]
    assert item["serial"] == "fridge-pharm-2"
    assert item["latest"]["temperature_c"] == 4.5
    assert item["status"] == "ok"
    assert item["profile"]["slug"] == "vaccine-refrigerator"
    upload(post, fridge, [(m / 2, 12.0) for m in range(0, 1)])
    upload(post, fridge, [(m, 12.0) for m in (0.9, 0.8)])
    detail = staff.get("/api/v1/sensors/fridge-pharm-2/").json()
    assert detail["latest"]["temperature_c"] == 12.0


def test_readings_over_a_range_raw_and_downsampled(fridge, post, staff):
    upload(post, fridge, [(m, 4.0 + (m % 3)) for m in range(60, 0, -1)])
    url = "/api/v1/sensors/fridge-pharm-2/readings/"
    start = minutes_ago(30).isoformat()
    raw = staff.get(url, {"from": start}).json()
    assert raw["count"] == 30
    assert raw["results"][0]["ts"] < raw["results"][-1]["ts"]
    buckets = staff.get(url, {"from": minutes_ago(60).isoformat(), "bucket_s": 600}).json()
    assert len(buckets) == 6
    assert sum(b["count"] for b in buckets) == 60
    assert buckets[0]["temperature_min_c"] == 4.0
    assert buckets[0]["temperature_max_c"] == 6.0
    assert staff.get(url, {"bucket_s": "x"}).status_code == 400
    assert staff.get(url, {"from": "yesterday"}).status_code == 400
    daily = staff.get("/api/v1/sensors/fridge-pharm-2/daily/").json()
    assert sum(d["count"] for d in daily) == 60


def test_nurses_do_not_see_the_cold_chain_api(fridge, client, nurse_user):
    client.force_login(nurse_user)
    assert client.get("/api/v1/sensors/").status_code == 403


def test_readings_cannot_be_changed_or_deleted_through_the_api(fridge, post, staff):
    upload(post, fridge, [(1, 4.0)])
    pk = EnvironmentReading.objects.get().pk
    url = f"/api/v1/environment-readings/{pk}/"
    assert staff.get(url).status_code == 200
    assert staff.put(url, {"temperature_c": 5}, "application/json").status_code == 405
    assert staff.patch(url, {"temperature_c": 5}, "application/json").status_code == 405
    assert staff.delete(url).status_code == 405
    assert EnvironmentReading.objects.get().temperature_c == 4.0


def test_readings_cannot_be_changed_in_the_orm_or_the_database(fridge, post):
    upload(post, fridge, [(1, 4.0)])
    row = EnvironmentReading.objects.get()
    row.temperature_c = 3.0
    with pytest.raises(ImmutableRecord):
        row.save()
    with pytest.raises(ImmutableRecord):
        row.delete()
    if connection.vendor == "postgresql":
        with pytest.raises(IntegrityError), transaction.atomic():
            EnvironmentReading.objects.filter(pk=row.pk).update(temperature_c=3.0)
        with pytest.raises(IntegrityError), transaction.atomic():
            EnvironmentReading.objects.filter(pk=row.pk).delete()
    assert EnvironmentReading.objects.get().temperature_c == 4.0


def test_corrections_are_annotations_with_author_and_reason(fridge, post, staff):
    upload(post, fridge, [(1, 14.0)])
    pk = EnvironmentReading.objects.get().pk
    url = "/api/v1/reading-annotations/"
    assert staff.post(url, {"reading": pk, "reason": " "}, "application/json").status_code == 400
    response = staff.post(
        url,
        {"reading": pk, "reason": "probe lying on the shelf", "corrected_temperature_c": 5.1},
        "application/json",
    )
    assert response.status_code == 201
    assert response.json()["author"] == "fac"
    note = ReadingAnnotation.objects.get()
    assert staff.delete(f"{url}{note.pk}/").status_code == 405
    assert staff.get(f"/api/v1/environment-readings/{pk}/").json()["annotations"] == 1
    assert staff.get(url, {"sensor": "fridge-pharm-2"}).json()["count"] == 1


def test_admin_shows_readings_read_only(fridge, post, admin_client):
    upload(post, fridge, [(1, 4.0)])
    row = EnvironmentReading.objects.get()
    change = reverse("admin:environment_environmentreading_change", args=[row.pk])
    page = admin_client.get(change)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    admin_client.post(change, {"temperature_c": "9"})
    delete = reverse("admin:environment_environmentreading_delete", args=[row.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert admin_client.get(reverse("admin:environment_environmentreading_add")).status_code == 403
    assert EnvironmentReading.objects.get().temperature_c == 4.0


def test_admin_alert_actions_acknowledge_and_resolve(fridge, post, admin_client):
    upload(post, fridge, [(m, 9.0) for m in range(30, 10, -1)])
    alert = Alert.objects.get()
    url = reverse("admin:alerts_alert_changelist")
    admin_client.post(url, {"action": "acknowledge_selected", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert alert.state == "acknowledged"
    resolve = {"action": "resolve_selected", "_selected_action": [alert.pk]}
    assert b"Corrective action" in admin_client.post(url, resolve).content
    alert.refresh_from_db()
    assert alert.state == "acknowledged", "resolving waits for the corrective-action note"
    admin_client.post(url, {**resolve, "confirm": "yes", "note": "stock moved, seal replaced"})
    alert.refresh_from_db()
    assert alert.state == "resolved"
    assert alert.resolution_note == "stock moved, seal replaced"
    assert (
        admin_client.get(reverse("admin:alerts_alert_change", args=[alert.pk])).status_code == 200
    )


def test_sensor_token_prints_only_a_new_token_and_revokes_the_old(fridge):
    out, err = StringIO(), StringIO()
    call_command("sensor_token", "fridge-pharm-2", stdout=out, stderr=err)
    token = out.getvalue().strip()
    assert "\n" not in token
    assert verify_token(token).sensor == fridge
    assert verify_token(fridge.token) is None


def test_report_command_and_csv_endpoint(fridge, post, staff, facilities_user):
    upload(post, fridge, [(m, 9.5 if 10 <= m <= 30 else 5.0) for m in range(60, 0, -1)])
    alert = Alert.objects.get()
    services.acknowledge(alert, facilities_user, "checked")
    services.resolve(alert, facilities_user, "stock quarantined, door seal replaced")
    day = minutes_ago(0).date().isoformat()
    out = StringIO()
    call_command(
        "coldchain_report",
        "--sensor",
        "fridge-pharm-2",
        "--from",
        "2020-01-01",
        "--to",
        day,
        "--format",
        "json",
        stdout=out,
    )
    report = json.loads(out.getvalue())
    assert report["readings"] == 60
    assert (report["min_c"], report["max_c"]) == (5.0, 9.5)
    assert 60 < report["time_in_range_pct"] < 70
    (excursion,) = report["excursions"]
    assert excursion["acknowledged_by"] == "fac"
    assert excursion["resolution_note"] == "stock quarantined, door seal replaced"
    assert excursion["degree_minutes"] == pytest.approx(1.5 * 21, abs=1.6)
    text = StringIO()
    call_command(
        "coldchain_report",
        "--sensor",
        "fridge-pharm-2",
        "--from",
        "2020-01-01",
        "--to",
        day,
        stdout=text,
    )
    assert "Time in range" in text.getvalue()
    assert "door seal replaced" in text.getvalue()
    response = staff.get(
        "/api/v1/sensors/fridge-pharm-2/report/",
        {"from": minutes_ago(120).isoformat(), "as": "csv"},
    )
    assert response["Content-Type"].startswith("text/csv")
    assert "door seal replaced" in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_database_down_is_a_503_with_retry_after(fridge, client):
    """A real refused connection: the database 'moves' to a closed port for one request."""
    body = json.dumps({"readings": [reading(fridge, minutes_ago(1))]})
    settings_dict = connection.settings_dict
    saved_port, saved_options = settings_dict["PORT"], settings_dict["OPTIONS"]

    def reset():
        connection.close()
        if getattr(connection, "pool", None) is not None:
            connection.close_pool()

    reset()
    settings_dict["PORT"] = "1"
    options = dict(saved_options)
    if "pool" in options:
        options["pool"] = {**options["pool"], "timeout": 1.0}
    settings_dict["OPTIONS"] = options
    try:
        response = client.post(
            "/api/v1/readings/environment/",
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {fridge.token}",
        )
    finally:
        reset()
        settings_dict["PORT"], settings_dict["OPTIONS"] = saved_port, saved_options
    assert response.status_code == 503
    assert response["Retry-After"]
    assert "database" in response.json()["detail"]
    assert not EnvironmentReading.objects.exists()
