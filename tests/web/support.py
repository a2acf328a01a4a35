"""Shared by the page, API and browser tests: people with roles, a ward where the straight-line
nearest pump is the wrong answer, and the real processes (ASGI server, Celery worker) the
browser tests run against."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth.models import Group, User
from django.db import connection
from django.utils import timezone

from hospital.models import Floor, Zone
from tests.factories import (
    AssetFactory,
    AssetLocationFactory,
    AssetTypeFactory,
    FloorFactory,
    TagFactory,
    ZoneFactory,
)
from tracking.models import Asset

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "web-test-password-2026"
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


def person(username: str, *roles: str, staff: bool = False, superuser: bool = False) -> User:
    user = User.objects.create_user(
        username, password=PASSWORD, is_staff=staff, is_superuser=superuser
    )
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def rect(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


@dataclass
class Ward:
    """Floor 'Trap ward': rooms S0-S3 south of a corridor, N0-N3 north, 5 m wide, 7 m deep.
    The nurse is in S1. Pump 'Next door' is in S0, 5 m away through the wall (12 m on foot);
    pump 'Across' is in N1, 10 m away straight across the corridor (10 m on foot); pump
    'Busy' in S1 itself is in use, and 'Lost' in S2 is missing: neither is offered."""

    floor: Floor
    zones: dict[str, Zone]
    assets: dict[str, Asset] = field(default_factory=dict)


def trap_ward() -> Ward:
    floor = FloorFactory(name="Trap ward", width_m=20.0, height_m=17.0)
    zones = {}
    for i in range(4):
        zones[f"S{i}"] = ZoneFactory(
            floor=floor, name=f"S{i}", polygon=rect(5 * i, 0, 5 * i + 5, 7)
        )
        zones[f"N{i}"] = ZoneFactory(
            floor=floor, name=f"N{i}", polygon=rect(5 * i, 10, 5 * i + 5, 17)
        )
    zones["C"] = ZoneFactory(
        floor=floor, name="Corridor", kind="corridor", polygon=rect(0, 7, 20, 10)
    )
    pump = AssetTypeFactory(slug="infusion-pump", name="Infusion pump")
    ward = Ward(floor=floor, zones=zones)
    now = timezone.now()

    def place(name, zone, x, y, **kwargs):
        presence = kwargs.pop("presence", "present")
        asset = AssetFactory(name=name, asset_type=pump, **kwargs)
        TagFactory(asset=asset, battery_pct=80.0)
        AssetLocationFactory(
            asset=asset,
            floor=floor,
            zone=zones[zone],
            x=x,
            y=y,
            presence=presence,
            estimated_at=now,
            last_seen_at=now,
        )
        ward.assets[name] = asset

    place("Next door", "S0", 2.5, 3.5)
    place("Across", "N1", 7.5, 13.5)
    place("Busy", "S1", 7.0, 3.0, status="in-use")
    place("Lost", "S2", 12.5, 3.5, presence="missing")
    return ward


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_env(**extra: str) -> dict[str, str]:
    """The environment of a child process that shares the test database and Redis."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return {**os.environ, "DATABASE_URL": url, **extra}


def start_asgi_server(port: int, log: Path) -> subprocess.Popen:
    """Daphne (through its runserver) serving HTTP, websockets and the static files."""
    command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"]
    command += ["--noreload", "--insecure"]
    server = subprocess.Popen(
        command, cwd=ROOT, env=service_env(), stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the ASGI server exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz/", timeout=2):
                return server
        except OSError:
            time.sleep(0.3)
    server.terminate()
    raise RuntimeError(f"the ASGI server did not answer:\n{log.read_text()}")


def start_worker(log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "hospital", "worker", "-P", "solo"]
    command += ["-n", "web-e2e@%h", "--without-gossip", "--without-mingle", "-l", "info"]
    env = service_env(WARDWISE_LATE_ALLOWANCE_S="0.5", WARDWISE_HOLD_MAX_S="1")
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
