"""The find-nearest and status-change endpoints: who may call them and what they answer."""

from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.utils import timezone
from rest_framework.test import APIClient

from hospital.roles import BIOMED, NURSE
from tests.factories import FloorFactory, ZoneFactory
from tests.web.support import person, rect, trap_ward
from tracking.models import AssetLocation


@pytest.fixture
def ward(db):
    return trap_ward()


@pytest.fixture
def api_for(db):
    def make(*roles, **kwargs):
        client = APIClient(enforce_csrf_checks=True)
        client.force_login(person("-".join(roles) or "nobody", *roles, **kwargs))
        return client

    return make


def nearest(client, **params):
    return client.get("/api/v1/find-nearest/", params)


def test_find_nearest_ranks_by_walking_not_straight_line(api_for, ward):
    response = nearest(api_for(NURSE), type="infusion-pump", from_zone=ward.zones["S1"].pk)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["from_zone"]["name"] == "S1"
    results = body["results"]
    assert [r["name"] for r in results] == ["Across", "Next door"]
    across, next_door = results
    assert across["walking_distance_m"] == pytest.approx(10.0, abs=0.01)
    assert next_door["walking_distance_m"] == pytest.approx(12.0, abs=0.01)
    assert next_door["straight_line_m"] < across["straight_line_m"]
    assert across["zone"] == "N1"
    assert across["floor_changes"] == 0
    assert [step["zone"] for step in across["route"]] == ["S1", "Corridor", "N1"]
    assert set(across) >= {"asset_id", "floor_id", "x", "y", "accuracy_m", "last_seen"}


def test_find_nearest_counts_floor_changes(api_for, ward, settings):
    settings.WARDWISE = {**settings.WARDWISE, "FLOOR_CHANGE_COST_M": 50.0}
    upstairs = FloorFactory(building=ward.floor.building, level=ward.floor.level + 1)
    room = ZoneFactory(floor=upstairs, name="U0", polygon=rect(0, 0, 5, 7))
    response = nearest(api_for(NURSE), type="infusion-pump", from_zone=room.pk, limit=1)
    (first,) = response.json()["results"]
    assert first["floor_changes"] == 1
    assert first["walking_distance_m"] == pytest.approx(50.0)  # no stairs drawn: the cost
    assert first["straight_line_m"] is None


def test_a_pump_whose_room_is_not_confirmed_comes_after_the_confirmed_ones(api_for, ward):
    """Across is nearer on foot, but its room is not confirmed: Next door (confirmed) first,
    Across after it, flagged with its confidence and the room it was last confirmed in."""
    confirmed_at = timezone.now() - timedelta(minutes=7)
    AssetLocation.objects.filter(asset=ward.assets["Across"]).update(
        zone_probability=0.42, confirmed_zone=ward.zones["N2"], confirmed_at=confirmed_at
    )
    results = nearest(api_for(NURSE), type="infusion-pump", from_zone=ward.zones["S1"].pk)
    next_door, across = results.json()["results"]
    assert (next_door["name"], next_door["quality"]) == ("Next door", "confirmed")
    assert next_door["last_confirmed_zone"] == "S0"
    assert across["name"] == "Across"
    assert across["quality"] == "uncertain"
    assert across["quality_reasons"] == ["low-confidence"]
    assert across["zone_confidence"] == 0.42
    assert across["zone"] == "N1"  # the engine's best guess, ranked as a guess
    assert across["last_confirmed_zone"] == "N2"
    assert across["last_confirmed_zone_id"] == ward.zones["N2"].pk
    assert across["last_confirmed_at"] == confirmed_at.isoformat().replace("+00:00", "Z")
    assert across["walking_distance_m"] < next_door["walking_distance_m"]


def test_a_pump_not_heard_for_a_while_comes_last(api_for, ward):
    silent_since = timezone.now() - timedelta(minutes=5)
    AssetLocation.objects.filter(asset=ward.assets["Across"]).update(last_seen_at=silent_since)
    AssetLocation.objects.filter(asset=ward.assets["Next door"]).update(scanners_used=1)
    results = nearest(api_for(NURSE), type="infusion-pump", from_zone=ward.zones["S1"].pk)
    assert [(r["name"], r["quality"]) for r in results.json()["results"]] == [
        ("Next door", "uncertain"),
        ("Across", "stale"),
    ]


def test_find_nearest_limit(api_for, ward):
    response = nearest(api_for(NURSE), type="infusion-pump", from_zone=ward.zones["S1"].pk, limit=1)
    assert [r["name"] for r in response.json()["results"]] == ["Across"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"from_zone": 1}, 400),
        ({"type": "infusion-pump"}, 400),
        ({"type": "teleporter", "from_zone": 1}, 400),
        ({"type": "infusion-pump", "from_zone": 10**9}, 404),
        ({"type": "infusion-pump", "from_zone": 1, "limit": 0}, 400),
    ],
)
def test_find_nearest_rejects_bad_queries(api_for, ward, params, status):
    assert nearest(api_for(NURSE), **params).status_code == status


def test_find_nearest_needs_a_clinical_role(api_for, ward, client):
    query = {"type": "infusion-pump", "from_zone": ward.zones["S1"].pk}
    assert client.get("/api/v1/find-nearest/", query).status_code == 403
    assert nearest(api_for(), **query).status_code == 403


def status_url(asset):
    return f"/api/v1/assets/{asset.pk}/status/"


def post_status(client, asset, status):
    client.get("/map/")  # the page sets the CSRF cookie, as in a browser
    token = client.cookies["csrftoken"].value
    return client.post(status_url(asset), {"status": status}, format="json", HTTP_X_CSRFTOKEN=token)


def test_a_nurse_sets_needs_cleaning_and_it_is_audited(api_for, ward):
    asset = ward.assets["Across"]
    response = post_status(api_for(NURSE), asset, "needs-cleaning")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "needs-cleaning"
    entry = LogEntry.objects.get_for_object(asset).latest("timestamp")
    assert entry.actor.username == "nurse"
    assert entry.changes_dict["status"] == ["available", "needs-cleaning"]


def test_a_pump_marked_in_use_is_no_longer_offered(api_for, ward):
    client = api_for(NURSE)
    post_status(client, ward.assets["Across"], "in-use")
    response = nearest(client, type="infusion-pump", from_zone=ward.zones["S1"].pk)
    assert [r["name"] for r in response.json()["results"]] == ["Next door"]


def test_a_nurse_may_not_set_maintenance_but_biomed_may(api_for, ward):
    asset = ward.assets["Across"]
    assert post_status(api_for(NURSE), asset, "maintenance").status_code == 403
    assert post_status(api_for(BIOMED), asset, "maintenance").status_code == 200
    asset.refresh_from_db()
    assert asset.status == "maintenance"


def test_status_change_needs_csrf_a_role_and_a_known_status(api_for, ward, client):
    asset = ward.assets["Across"]
    assert client.post(status_url(asset), {"status": "in-use"}).status_code == 403
    nurse = api_for(NURSE)
    assert nurse.post(status_url(asset), {"status": "in-use"}, format="json").status_code == 403
    assert post_status(nurse, asset, "broken").status_code == 400
    assert post_status(api_for(), asset, "in-use").status_code == 403


def test_a_nurse_cannot_acknowledge_alerts(api_for, db):
    from django.utils import timezone

    from alerts.services import open_alert

    alert = open_alert(
        source="test",
        kind="k",
        subject="s",
        title="Fridge",
        severity="critical",
        started_at=timezone.now(),
    )
    nurse = api_for(NURSE)
    response = nurse.post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {"comment": "mine"})
    assert response.status_code == 403
    alert.refresh_from_db()
    assert alert.state == "open"
