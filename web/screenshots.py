"""Screenshots of every page at desktop (1280x800) and phone (390x844) size, into
docs/screenshots/: `python -m web.screenshots` (or `make screenshots`).

It sets up the demo hospital in a throw-away SQLite directory, gives the fridges a day of
readings with one critical excursion (so the console has something to show), serves the demo
(simulated gateways included) and drives Debian's Chromium with Playwright.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}
EXCURSION_SENSOR = "fridge-pharm-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed_readings() -> None:
    """A day of readings every 15 min for every sensor around the middle of its range, and a
    critical excursion on one fridge for the last 40 minutes (evaluated by the rule engine)."""
    from django.utils import timezone

    from environment import monitoring
    from environment.models import EnvironmentReading, Sensor, SensorState

    now = timezone.now().replace(second=0, microsecond=0)
    for index, sensor in enumerate(Sensor.objects.select_related("profile")):
        low = sensor.profile.temperature_min_c
        high = sensor.profile.temperature_max_c
        middle = (low + high) / 2 if low is not None and high is not None else 20.0
        rows = []
        for step in range(96, -1, -1):
            ts = now - timedelta(minutes=15 * step)
            wave = math.sin(step / 6 + index) * (high - low) / 6 if high is not None else 0.5
            rows.append((ts, round(middle + wave, 2)))
        if sensor.serial == EXCURSION_SENSOR:
            rows = [(ts, v) for ts, v in rows if ts < now - timedelta(minutes=45)]
            rows += [(now - timedelta(minutes=m), 6.5 + (45 - m) * 0.15) for m in range(45, -1, -3)]
        SensorState.objects.update_or_create(sensor=sensor, defaults={"last_received_at": now})
        EnvironmentReading.objects.bulk_create(
            [
                EnvironmentReading(
                    sensor=sensor,
                    ts=ts,
                    temperature_c=value,
                    humidity_pct=45.0,
                    battery_pct=90,
                    received_at=ts,
                )
                for ts, value in rows
            ],
            ignore_conflicts=True,
        )
        monitoring.evaluate_sensor(sensor.pk, now=now)


def prepare(var_dir: Path) -> None:
    """The embedded demo set-up (SQLite, in-process layer), whatever the shell has set."""
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    os.environ["WARDWISE_VAR_DIR"] = str(var_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hospital.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("demo", no_serve=True, verbosity=0)
    seed_readings()


def wait_for(url: str, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310  (our own local server)  # nosec B310
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the demo server did not answer at {url}")


def sign_in(page, base: str, user: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(f"{user}-demo-2026")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")


def shoot(browser, base: str, out: Path, only: set[str] | None = None) -> list[Path]:
    taken = []
    for size, (width, height) in VIEWPORTS.items():
        phone = size == "phone"
        context = browser.new_context(
            viewport={"width": width, "height": height},
            device_scale_factor=2 if phone else 1,
            is_mobile=phone,
            has_touch=phone,
            bypass_csp=True,  # page.evaluate needs eval; the pages themselves never do
        )
        page = context.new_page()

        def save(name: str, full_page: bool = False, page=page, size=size) -> None:
            if only and name not in only:
                return
            path = out / f"{name}-{size}.png"
            page.screenshot(path=str(path), full_page=full_page)
            taken.append(path)

        page.goto(f"{base}/accounts/login/")
        save("login")
        sign_in(page, base, "nurse")
        save("home")
        page.goto(f"{base}/map/")
        page.wait_for_function("window.wardwiseMap && window.wardwiseMap.count() > 0")
        page.wait_for_timeout(2500)
        save("map")
        page.select_option("#find-type", "infusion-pump")
        page.select_option("#find-from", label="121")
        page.get_by_role("button", name="Find nearest available").click()
        page.locator("#find-results button", has_text="via").first.click()
        page.wait_for_selector("#detail:not([hidden])")
        page.wait_for_timeout(800)
        save("find-nearest", full_page=phone)
        page.fill("#search-input", "wheelchair")
        page.wait_for_selector("#search-results li")
        page.locator("#search-results button").first.scroll_into_view_if_needed()
        save("search", full_page=phone)
        show_unconfirmed(page)
        save("honest-location", full_page=phone)
        page.evaluate(STRESS_SCRIPT)
        page.wait_for_timeout(1000)
        save("map-2000-markers")
        asset_id = page.evaluate("document.querySelector('#find-results button').dataset.assetId")
        page.goto(f"{base}/assets/{asset_id}/")
        save("asset", full_page=phone)
        context.clear_cookies()
        sign_in(page, base, "facilities")
        page.goto(f"{base}/console/")
        page.wait_for_selector(".alert-card")
        page.wait_for_timeout(1500)
        save("console", full_page=phone)
        page.locator(".alert-card [data-action=acknowledge]").first.click()
        page.fill("#step-text", "On my way with a thermometer")
        save("console-acknowledge")
        page.get_by_role("button", name="Cancel").click()
        page.goto(f"{base}/sensors/")
        page.wait_for_selector(".sensor-card canvas")
        page.wait_for_timeout(1500)
        save("sensors", full_page=phone)
        context.close()
    return taken


def show_unconfirmed(page, wait_s: float = 90.0) -> None:
    """Select an asset of the shown floor whose room the evidence does not confirm right now
    but did earlier (the simulated hospital always has some: moving, or between rooms),
    through the search, as a nurse would."""
    find = """(() => window.wardwiseMap.unconfirmed().map((id) => window.wardwiseMap.marker(id))
        .filter((m) => m.name && m.last_confirmed_zone).map((m) => m.name))()"""
    deadline = time.time() + wait_s
    while not (names := page.evaluate(find)) and time.time() < deadline:
        page.wait_for_timeout(1000)
    if not names:
        raise RuntimeError("no asset with an unconfirmed room on the shown floor")
    page.fill("#search-input", names[0])
    page.wait_for_function(
        "name => document.querySelector('#search-status').textContent !== ''"
        " && document.querySelector('#search-input').value === name",
        arg=names[0],
    )
    page.wait_for_timeout(600)  # the search's debounce and answer
    page.locator("#search-results button", has_text=f"{names[0]} ·").first.click()
    page.wait_for_function(
        "name => (document.querySelector('#detail-title') || {}).textContent === name",
        arg=names[0],
    )
    page.wait_for_timeout(500)


#: 2,000 synthetic markers on the current floor, through the same code path as a snapshot.
STRESS_SCRIPT = """
(() => {
  const types = ["infusion-pump", "wheelchair", "bed", "ventilator", "defibrillator"];
  const statuses = ["available", "in-use", "needs-cleaning", "maintenance"];
  const assets = [];
  for (let i = 0; i < 2000; i++) {
    assets.push({asset_id: 100000 + i, floor_id: window.wardwiseMap.floorId(), zone: null,
      x: (i * 7.31) % 60, y: (i * 3.77) % 17, accuracy_m: 1.5, ts: new Date().toISOString(),
      last_seen: new Date().toISOString(), presence: i % 41 ? "present" : "missing",
      status: statuses[i % 4], name: "Synthetic " + i, type: types[i % 5]});
  }
  window.wardwiseMap.receive({type: "snapshot", floor_id: window.wardwiseMap.floorId(), assets});
})()
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="save only these shots (e.g. honest-location)"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="wardwise-shots-") as tmp:
        var_dir = Path(tmp)
        prepare(var_dir)
        port = free_port()
        env = {**os.environ, "WARDWISE_VAR_DIR": str(var_dir), "DEBUG": "true"}
        log = (var_dir / "server.log").open("w")
        server = subprocess.Popen(  # noqa: S603  (fixed arguments)  # nosec B603
            [sys.executable, "manage.py", "demo", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(f"{base}/healthz/")
            time.sleep(3)  # the simulated gateways' first positions
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    taken = shoot(browser, base, args.out, set(args.only or ()))
                finally:
                    browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    for path in taken:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
