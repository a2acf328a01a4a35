"""The pages in a real browser (Debian's Chromium driven by Playwright) against a real ASGI
server on the test PostgreSQL database and the Redis channel layer; readings travel through the
API, a Celery worker and the websockets exactly as in production."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from alerts.models import Alert, AlertState
from environment.models import Sensor, ThresholdProfile
from hospital.devices import issue_token
from hospital.roles import FACILITIES, NURSE
from hospital.site_loader import load_site_document
from tests.web.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    free_port,
    person,
    start_asgi_server,
    start_worker,
    stop,
    trap_ward,
)
from tracking import presence
from tracking.models import Asset, AssetLocation, Scanner, ScannerHealth, Tag
from tracking.simulation.layout import generate_hospital
from tracking.simulation.radio import RadioSimulator, format_ts

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def server(redis_bus, settings, tmp_path):
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("the browser tests need PostgreSQL and Redis (run them through make test)")
    if not settings.REDIS_URL:
        pytest.fail("the browser tests need PostgreSQL and Redis (run them through make test)")
    port = free_port()
    process = start_asgi_server(port, tmp_path / "asgi.log")
    yield f"http://127.0.0.1:{port}"
    stop(process)


@pytest.fixture(scope="module")
def browser():
    """Playwright's sync API keeps an event loop running in this thread, which makes Django
    refuse ORM calls from the test; the test code itself is plain synchronous code, so allow
    them for the browser tests only."""
    from playwright.sync_api import sync_playwright

    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture
def page(browser):
    """A page for tests that inspect the map with page.evaluate, which needs eval: the pages'
    own Content-Security-Policy forbids it, so this page bypasses it."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


@pytest.fixture
def strict_page(browser):
    """A page under the site's real Content-Security-Policy; any violation fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    violations = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    yield page
    context.close()
    assert violations == []


def sign_in(page, server, username, password=PASSWORD):
    page.goto(f"{server}/accounts/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def post_json(url, body, token):
    request = urllib.request.Request(  # noqa: S310  (the local test server)
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return response.status, json.loads(response.read())


def in_another_thread(function):
    """Run worker-side code (which publishes with async_to_sync) away from the event loop that
    Playwright's sync API keeps in the test's thread."""

    def run():
        try:
            return function()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=60)


def test_sign_in_and_out(page, server):
    person("nina", NURSE)
    sign_in(page, server, "nina", "not-the-password")
    assert page.get_by_role("alert").inner_text().startswith("Your user name and password")
    sign_in(page, server, "nina")
    page.wait_for_url(f"{server}/")
    page.get_by_role("link", name="Floor map").first.click()
    page.wait_for_url(f"{server}/map/**")
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{server}/map/")
    assert "/accounts/login/" in page.url


def test_a_reading_posted_to_the_api_moves_a_marker(page, server, tmp_path):
    document = generate_hospital(floors=1, rooms_per_side=4, assets_per_floor=2, seed=5)
    load_site_document(document)
    asset = Asset.objects.order_by("pk").first()
    floor = Scanner.objects.first().floor
    corner = floor.zones.order_by("pk").first()
    AssetLocation.objects.create(
        asset=asset,
        floor=floor,
        zone=corner,
        x=0.3,
        y=0.3,
        accuracy_m=2.0,
        estimated_at=timezone.now() - timedelta(minutes=10),
        last_seen_at=timezone.now() - timedelta(minutes=10),
    )
    person("nina", NURSE)
    worker = start_worker(tmp_path / "worker.log")
    try:
        sign_in(page, server, "nina")
        page.wait_for_url(f"{server}/")
        page.goto(f"{server}/map/?floor={floor.pk}")
        page.wait_for_function(f"window.wardwiseMap.marker({asset.pk}) !== null")
        assert page.evaluate(f"window.wardwiseMap.marker({asset.pk}).x") == pytest.approx(0.3)
        page.get_by_text("Live", exact=True).wait_for()

        simulator = RadioSimulator(document, seed=5, start_ts=time.time() - 25)
        readings, _truth = simulator.run(15.0)
        tag = Tag.objects.get(asset=asset).tag_id
        by_scanner: dict[str, list] = {}
        for r in readings:
            by_scanner.setdefault(r.scanner, []).append(
                {"tag": r.tag, "rssi": r.rssi, "ts": format_ts(r.ts)}
            )
        assert any(r.tag == tag for r in readings)
        for serial, batch in by_scanner.items():
            token = issue_token(scanner=Scanner.objects.get(serial=serial))
            status, body = post_json(
                f"{server}/api/v1/readings/rssi/", {"batch": serial, "readings": batch}, token
            )
            assert status == 202, body

        page.wait_for_function(
            f"(() => {{ const m = window.wardwiseMap.marker({asset.pk});"
            " return m && Math.hypot(m.x - 0.3, m.y - 0.3) > 1; })()",
            timeout=60_000,
        )
        stored = AssetLocation.objects.get(asset=asset)
        shown = page.evaluate(f"window.wardwiseMap.marker({asset.pk})")
        assert stored.x != pytest.approx(0.3)
        assert shown["zone"] is not None
    finally:
        stop(worker)


def test_find_nearest_picks_the_pump_across_the_corridor(strict_page, server):
    page = strict_page
    ward = trap_ward()
    person("nina", NURSE)
    sign_in(page, server, "nina")
    page.wait_for_url(f"{server}/")
    page.goto(f"{server}/map/?floor={ward.floor.pk}")
    page.get_by_text("Live", exact=True).wait_for()
    page.get_by_label("Equipment", exact=True).select_option("infusion-pump")
    page.get_by_label("I am in").select_option(str(ward.zones["S1"].pk))
    page.get_by_role("button", name="Find nearest available").click()
    results = page.locator("#find-results button")
    results.first.wait_for()
    assert results.count() == 2
    assert "Across" in results.nth(0).inner_text()
    assert "10 m walk via Corridor" in results.nth(0).inner_text()
    assert "Next door" in results.nth(1).inner_text()
    results.first.click()
    detail = page.locator("#detail")
    detail.wait_for(state="visible")
    assert page.locator("#detail-title").inner_text() == "Across"
    assert "N1" in detail.inner_text()
    page.get_by_role("button", name="Needs cleaning").click()
    page.get_by_text("Marked “Needs cleaning”.").wait_for()
    assert Asset.objects.get(name="Across").status == "needs-cleaning"


def test_the_map_shows_the_last_confirmed_room_never_a_guess_as_a_room(strict_page, server):
    """Honest location on the floor map: a pump whose room is not confirmed is listed after the
    confirmed one, as "last confirmed in <room> at <time> (confidence NN %)"; a gateway going
    offline turns the selected pump's room into its last confirmed room, live."""
    page = strict_page
    ward = trap_ward()
    AssetLocation.objects.filter(asset=ward.assets["Across"]).update(
        zone_probability=0.4,
        confirmed_zone=ward.zones["N2"],
        confirmed_at=timezone.now() - timedelta(minutes=4),
    )
    gateway = Scanner.objects.create(serial="gw-s0", floor=ward.floor, x=2.5, y=3.5)  # in S0
    long_ago = timezone.now() - timedelta(minutes=20)
    ScannerHealth.objects.create(
        scanner=gateway, online=True, last_batch_at=long_ago, last_heartbeat_at=long_ago
    )
    person("nina", NURSE)
    sign_in(page, server, "nina")
    page.wait_for_url(f"{server}/")
    page.goto(f"{server}/map/?floor={ward.floor.pk}")
    page.get_by_text("Live", exact=True).wait_for()
    page.get_by_label("Equipment", exact=True).select_option("infusion-pump")
    page.get_by_label("I am in").select_option(str(ward.zones["S1"].pk))
    page.get_by_role("button", name="Find nearest available").click()
    results = page.locator("#find-results button")
    results.nth(1).wait_for()
    assert "Next door" in results.nth(0).inner_text()
    unsure = results.nth(1).inner_text()
    assert "Across" in unsure
    assert "Room not confirmed: last confirmed in N2 at" in unsure
    assert "(confidence 40 %)" in unsure
    assert "best guess N1, Trap ward" in unsure
    assert "not confirmed comes after the rest" in page.locator("#find-status").inner_text()

    results.nth(1).click()
    detail = page.locator("#detail")
    detail.wait_for(state="visible")
    text = detail.inner_text()
    assert "last confirmed in N2 at" in text
    assert "(confidence 40 %)" in text
    assert "uncertain: weak evidence for the room · best guess now N1" in text

    page.get_by_label("Name, type, serial number or tag").fill("Across")
    found = page.locator("#search-results button").first
    found.wait_for()
    assert "Room not confirmed: last confirmed in N2 at" in found.inner_text()

    results.nth(0).click()
    detail.get_by_text("S0, Trap ward", exact=True).wait_for()
    assert "confirmed (confidence 97 %)" in detail.inner_text()
    assert in_another_thread(presence.mark_offline_scanners) == 1
    detail.get_by_text("the room's scanners are offline").wait_for()
    text = detail.inner_text()
    assert "last confirmed in S0 at" in text
    assert "(confidence 97 %)" in text


def test_a_nurse_cannot_open_the_admin_or_acknowledge_alerts(page, server):
    alert = Alert.objects.create(
        source="test",
        kind="temperature-high",
        subject="s",
        title="Fridge 9",
        severity="critical",
        started_at=timezone.now(),
    )
    person("nina", NURSE)
    sign_in(page, server, "nina")
    page.wait_for_url(f"{server}/")
    page.goto(f"{server}/admin/")
    assert "/admin/login/" in page.url
    assert "not authorized" in page.content()
    response = page.goto(f"{server}/console/")
    assert response.status == 403
    assert page.get_by_role("heading", name="This page is not for your role").is_visible()
    page.goto(f"{server}/map/")
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    answer = page.request.post(
        f"{server}/api/v1/alerts/{alert.pk}/acknowledge/",
        data={"comment": "mine"},
        headers={"X-CSRFToken": token, "Referer": f"{server}/map/"},
    )
    assert answer.status == 403
    alert.refresh_from_db()
    assert alert.state == AlertState.OPEN


def test_an_alert_from_a_reading_appears_live_and_is_acknowledged(strict_page, server):
    page = strict_page
    profile, _ = ThresholdProfile.objects.get_or_create(
        slug="vaccine-refrigerator",
        defaults={
            "name": "Vaccine refrigerator (2-8 °C)",
            "temperature_min_c": 2.0,
            "temperature_max_c": 8.0,
            "temperature_critical_min_c": 0.0,
            "temperature_critical_max_c": 10.0,
        },
    )
    ward = trap_ward()
    sensor = Sensor.objects.create(
        serial="fridge-e2e", kind="refrigerator", zone=ward.zones["N0"], profile=profile
    )
    token = issue_token(sensor=sensor)
    person("fred", FACILITIES)
    sign_in(page, server, "fred")
    page.wait_for_url(f"{server}/")
    page.goto(f"{server}/console/")
    page.get_by_text("Live", exact=True).wait_for()
    page.get_by_text("No open alerts").wait_for()

    now = timezone.now().replace(microsecond=0)
    readings = [
        {"sensor": "fridge-e2e", "ts": (now - timedelta(minutes=m)).isoformat(), "temperature_c": t}
        for m, t in [(40, 4.5), (35, 4.6)] + [(m, 12.5) for m in range(30, -1, -2)]
    ]
    status, body = post_json(
        f"{server}/api/v1/readings/environment/", {"readings": readings}, token
    )
    assert status == 202, body

    card = page.locator(".alert-card").first
    card.wait_for()
    text = card.inner_text()
    assert "Critical" in text
    assert "fridge-e2e" in text
    assert "N0, Trap ward" in text
    assert "12.5 °C" in text
    card.get_by_role("button", name="Acknowledge").click()
    page.get_by_label("Comment (optional)").fill("Moving the vaccines to the spare fridge")
    page.locator("#step-confirm").click()
    page.get_by_text("Acknowledged by fred").wait_for()
    alert = Alert.objects.get(sensor=sensor)
    assert alert.state == AlertState.ACKNOWLEDGED
    assert alert.acknowledged_by.username == "fred"
    assert alert.acknowledge_comment == "Moving the vaccines to the spare fridge"


def test_two_thousand_markers_render_on_one_canvas(page, server):
    ward = trap_ward()
    person("nina", NURSE)
    sign_in(page, server, "nina")
    page.wait_for_url(f"{server}/")
    page.goto(f"{server}/map/?floor={ward.floor.pk}")
    page.wait_for_function("window.wardwiseMap.count() === 4")
    page.evaluate(
        """floor => {
          const assets = [];
          for (let i = 0; i < 2000; i++) {
            assets.push({asset_id: 100000 + i, floor_id: floor, x: (i * 7.3) % 20,
              y: (i * 3.7) % 17, accuracy_m: 1.5, ts: new Date().toISOString(),
              presence: "present", status: "available", name: "S" + i, type: "infusion-pump"});
          }
          window.wardwiseMap.receive({type: "snapshot", floor_id: floor, assets});
          const updates = assets.map(a => ({...a, x: (a.x + 1) % 20}));
          window.wardwiseMap.receive({type: "updates", floor_id: floor, assets: updates});
        }""",
        ward.floor.pk,
    )
    page.wait_for_function("window.wardwiseMap.marker(100001).x !== 7.3")
    assert page.evaluate("window.wardwiseMap.count()") == 2000
    assert page.locator(".leaflet-overlay-pane canvas").count() == 2
    assert page.locator(".leaflet-marker-icon").count() == 0
