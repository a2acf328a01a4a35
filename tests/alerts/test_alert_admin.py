"""The admin's resolve action asks for the corrective action on an intermediate page."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from alerts import services
from alerts.models import Alert, AlertState

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:alerts_alert_changelist")


def make_alert(subject: str) -> Alert:
    return services.open_alert(
        source="environment",
        kind="temperature-high",
        subject=subject,
        title=f"fridge {subject}",
        severity="warning",
        started_at=timezone.now(),
        value=9.0,
    )


def action(alerts, **extra) -> dict:
    return {"action": "resolve_selected", "_selected_action": [a.pk for a in alerts], **extra}


def test_resolve_asks_for_the_note_then_records_it(admin_client, admin_user):
    first, second = make_alert("sensor:1"), make_alert("sensor:2")
    page = admin_client.post(CHANGELIST, action([first, second]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Corrective action" in html
    assert f"#{first.pk} fridge sensor:1" in html
    assert Alert.objects.filter(state=AlertState.RESOLVED).count() == 0
    note = "stock moved to fridge 2; compressor relay replaced"
    done = admin_client.post(CHANGELIST, action([first, second], confirm="yes", note=note))
    assert done.status_code == 302
    for alert in (first, second):
        alert.refresh_from_db()
        assert alert.state == AlertState.RESOLVED
        assert alert.resolution_note == note
        assert alert.resolved_by == admin_user
        assert not alert.resolved_automatically


def test_an_empty_note_is_refused_and_nothing_is_resolved(admin_client):
    alert = make_alert("sensor:3")
    page = admin_client.post(CHANGELIST, action([alert], confirm="yes", note="   "))
    assert page.status_code == 200
    assert "This field is required" in page.content.decode()
    alert.refresh_from_db()
    assert alert.state == AlertState.OPEN


def test_resolved_alerts_are_skipped(admin_client):
    alert = make_alert("sensor:4")
    services.resolve(alert, note="fixed", automatically=True)
    response = admin_client.post(CHANGELIST, action([alert]), follow=True)
    assert "already resolved" in response.content.decode()
