"""Who may open which page, and the pages' server side (no browser)."""

from io import StringIO

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from hospital.roles import NURSE
from tests.web.support import trap_ward
from tracking.models import AssetLocation
from web.middleware import CSP

PAGES = ["/map/", "/console/", "/sensors/"]


@pytest.fixture
def ward(db):
    return trap_ward()


@pytest.mark.parametrize("path", [*PAGES, "/assets/1/", "/"])
def test_signed_out_visitors_go_to_sign_in(client, db, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("nurse", {"/map/": 200, "/console/": 403, "/sensors/": 403}),
        ("biomed", {"/map/": 200, "/console/": 403, "/sensors/": 403}),
        ("facilities", {"/map/": 200, "/console/": 200, "/sensors/": 200}),
        ("admin_person", {"/map/": 200, "/console/": 200, "/sensors/": 200}),
    ],
)
def test_each_page_is_for_the_roles_that_need_it(request, ward, who, expected):
    client = request.getfixturevalue(who)
    assert {path: client.get(path).status_code for path in PAGES} == expected


def test_a_person_without_a_role_sees_no_page(signed_in, ward):
    client = signed_in()
    assert client.get("/map/").status_code == 403
    assert b"has no role yet" in client.get("/").content


def test_the_forbidden_page_names_the_roles(nurse, db):
    response = nurse.get("/console/")
    assert b"facilities, admin" in response.content


def test_navigation_shows_only_what_the_role_may_open(nurse, facilities, biomed, db):
    nurse_home = nurse.get("/").content.decode()
    assert 'href="/map/"' in nurse_home
    assert 'href="/console/"' not in nurse_home
    assert 'href="/admin/"' not in nurse_home
    assert 'href="/console/"' in facilities.get("/").content.decode()
    assert 'href="/admin/"' in biomed.get("/").content.decode()


def test_a_nurse_cannot_open_the_admin_even_if_flagged_staff(signed_in, db):
    for client in (signed_in(NURSE), signed_in(NURSE, "x", staff=True)):
        response = client.get("/admin/")
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


def test_biomed_staff_open_the_admin(biomed, db):
    assert biomed.get("/admin/").status_code == 200


def test_the_demo_nurse_is_not_staff(db):
    call_command("demo", no_serve=True, stdout=StringIO())
    users = {u.username: u for u in User.objects.all()}
    assert not users["nurse"].is_staff
    assert not users["facilities"].is_staff
    assert users["biomed"].is_staff
    assert users["admin"].is_superuser


def test_pages_carry_a_strict_content_security_policy(nurse, ward, client):
    assert nurse.get("/map/")["Content-Security-Policy"] == CSP
    assert client.get("/accounts/login/")["Content-Security-Policy"] == CSP
    assert "'unsafe-inline'" not in CSP


def test_the_map_page_has_no_inline_script(nurse, ward):
    html = nurse.get("/map/").content.decode()
    assert "<script>" not in html
    assert '<script id="map-config" type="application/json">' in html
    assert "/static/vendor/leaflet/leaflet.js" in html


def test_the_login_page_labels_its_fields(client, db):
    html = client.get("/accounts/login/").content.decode()
    assert '<label for="id_username">' in html
    assert '<label for="id_password">' in html


def test_asset_detail_shows_what_a_nurse_needs(nurse, ward):
    asset = ward.assets["Across"]
    html = nurse.get(f"/assets/{asset.pk}/").content.decode()
    for text in ("Across", "N1, Trap ward", "ago", "80 %", "± 1.5 m"):
        assert text in html
    assert 'value="needs-cleaning"' in html
    assert 'value="maintenance"' not in html


def test_asset_detail_shows_the_last_confirmed_room_when_the_room_is_uncertain(nurse, ward):
    asset = ward.assets["Across"]
    confirmed_at = timezone.now().replace(hour=9, minute=41, second=0, microsecond=0)
    AssetLocation.objects.filter(asset=asset).update(
        zone_probability=0.42, confirmed_zone=ward.zones["N2"], confirmed_at=confirmed_at
    )
    html = nurse.get(f"/assets/{asset.pk}/").content.decode()
    assert "last confirmed in N2 at" in html
    assert "09:41</time> (confidence 42 %)" in html
    assert "uncertain: weak evidence for the room · best guess now N1, Trap ward" in html
    assert "<dd>N1, Trap ward</dd>" not in html  # never the room as if it were known


def test_a_nurse_marks_a_pump_in_use_and_it_is_audited(nurse, ward):
    asset = ward.assets["Across"]
    response = nurse.post(f"/assets/{asset.pk}/", {"status": "in-use"}, follow=True)
    assert b"is now marked" in response.content
    asset.refresh_from_db()
    assert asset.status == "in-use"
    entry = LogEntry.objects.get_for_object(asset).latest("timestamp")
    assert entry.actor.username == "nurse"
    assert entry.changes_dict["status"] == ["available", "in-use"]


def test_a_nurse_cannot_take_a_pump_out_of_service(nurse, ward):
    asset = ward.assets["Across"]
    response = nurse.post(f"/assets/{asset.pk}/", {"status": "maintenance"}, follow=True)
    assert b"may not set the status" in response.content
    asset.refresh_from_db()
    assert asset.status == "available"
