"""The floor websocket: who may connect, the snapshot, coalesced updates, over the in-memory and
the Redis channel layers, and once through a real ASGI server (daphne) with a real login."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from http.cookiejar import CookieJar
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone

from hospital import observability
from hospital.asgi import application
from hospital.roles import NURSE
from tests.factories import ScannerFactory
from tests.tracking.readside import PASSWORD, person, ward
from tracking import live, presence
from tracking.consumers import Coalescer
from tracking.models import ScannerHealth

ROOT = Path(__file__).resolve().parents[2]
IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# Consumers read the database through database_sync_to_async, which needs committed data.
live_db = pytest.mark.django_db(transaction=True)


def update(asset, floor, x, ts, **extra) -> dict:
    return {
        "asset_id": asset.pk,
        "floor_id": floor.pk,
        "zone_id": None,
        "zone": None,
        "x": float(x),
        "y": 1.0,
        "accuracy_m": 1.2,
        "ts": ts.isoformat(),
        "presence": "present",
        "status": "available",
        "last_seen": ts.isoformat(),
        "zone_confidence": 0.62,
        "scanners_used": 3,
        "quality": "uncertain",
        "quality_reasons": ["no-zone"],
        "last_confirmed_zone_id": None,
        "last_confirmed_zone": None,
        "last_confirmed_at": None,
        **extra,
    }


def session_headers(user) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return [(b"cookie", cookie.encode()), (b"origin", b"http://localhost")]


def communicator(floor_id, headers=None) -> WebsocketCommunicator:
    headers = headers or [(b"origin", b"http://localhost")]
    return WebsocketCommunicator(application, f"/ws/floors/{floor_id}/", headers=headers)


publish = sync_to_async(live.publish_location_updates)
publish_status = sync_to_async(live.publish_status_change)


@pytest.fixture
def in_memory_layer(settings):
    settings.CHANNEL_LAYERS = IN_MEMORY


# -- the publishing side and the coalescer, no websocket --------------------------------------


def test_updates_are_batched_per_floor_in_chunks(monkeypatch):
    monkeypatch.setattr(live, "CHUNK_SIZE", 2)
    updates = [{"asset_id": i, "floor_id": 1 + i % 2, "ts": "t", "junk": 1} for i in range(5)]
    messages = live._group_messages(updates)
    assert [(group, len(m["updates"])) for group, m in messages] == [
        ("floor-1", 2),
        ("floor-1", 1),
        ("floor-2", 2),
    ]
    assert all(m["type"] == "asset.locations" for _, m in messages)
    assert set(messages[0][1]["updates"][0]) == set(live.LOCATION_FIELDS)


def test_an_asset_changing_floors_is_also_sent_to_the_floor_it_left():
    messages = live._group_messages([{"asset_id": 7, "floor_id": 2, "previous_floor_id": 1}])
    assert sorted(group for group, _ in messages) == ["floor-1", "floor-2"]


def test_publishing_never_fails_the_caller(monkeypatch):
    def broken():
        raise ConnectionError("layer down")

    monkeypatch.setattr(live, "get_channel_layer", broken)
    live.publish_location_updates([{"asset_id": 1, "floor_id": 1}])
    live.publish_status_change(1, 1, "in-use", "present")


class RecordingLayer:
    """A shared channel layer stand-in: records what it was sent, slowly, or fails."""

    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.events: list[tuple[str, str, object]] = []

    async def group_send(self, group, message):
        self.events.append(("start", group, asyncio.get_running_loop()))
        await asyncio.sleep(self.delay_s)
        if self.fail:
            raise ConnectionError("redis went away")
        self.events.append(("done", group, asyncio.get_running_loop()))


def test_a_shared_layer_is_sent_to_from_one_long_lived_loop_in_order(monkeypatch):
    layer = RecordingLayer(delay_s=0.05)
    monkeypatch.setattr(live, "get_channel_layer", lambda: layer)
    live.publish_status_change(1, 1, "in-use", "present")
    live.publish_status_change(2, 2, "in-use", "present")
    live.publisher().wait(5)
    assert [(kind, group) for kind, group, _ in layer.events] == [
        ("start", "floor-1"),
        ("done", "floor-1"),
        ("start", "floor-2"),
        ("done", "floor-2"),
    ]
    loops = {loop for _, _, loop in layer.events}
    assert loops == {live.publisher().loop}
    assert live.publisher().loop.is_running()


def test_the_caller_does_not_wait_for_its_own_publish(monkeypatch):
    layer = RecordingLayer(delay_s=0.5)
    monkeypatch.setattr(live, "get_channel_layer", lambda: layer)
    live.publish_status_change(1, 1, "in-use", "present")
    assert ("done", "floor-1") not in [(kind, group) for kind, group, _ in layer.events]
    live.publisher().wait(5)
    assert ("done", "floor-1") in [(kind, group) for kind, group, _ in layer.events]


def test_a_failed_publish_is_logged_and_the_next_one_still_goes(monkeypatch, caplog):
    failing = RecordingLayer(fail=True)
    monkeypatch.setattr(live, "get_channel_layer", lambda: failing)
    live.publish_status_change(1, 1, "in-use", "present")
    live.publisher().wait(5)
    assert "live update delivery failed for 1 message(s)" in caplog.text
    working = RecordingLayer()
    monkeypatch.setattr(live, "get_channel_layer", lambda: working)
    live.publish_status_change(2, 2, "in-use", "present")
    live.publisher().wait(5)
    assert ("done", "floor-2") in [(kind, group) for kind, group, _ in working.events]


def test_a_forked_child_starts_its_own_publisher(monkeypatch):
    parents = live.publisher()
    monkeypatch.setattr(live.os, "getpid", lambda: parents.pid + 1)
    childs = live.publisher()
    assert childs is not parents
    assert childs.pid == parents.pid + 1
    assert childs.thread.is_alive()


def test_the_coalescer_keeps_the_newest_state_and_spaces_each_asset_a_second():
    c = Coalescer(interval_s=1.0)
    c.add_location({"asset_id": 1, "x": 1, "ts": "2026-03-01T10:00:00+00:00"})
    assert c.take_due(now=100.0) == [{"asset_id": 1, "x": 1, "ts": "2026-03-01T10:00:00+00:00"}]
    c.add_location({"asset_id": 1, "x": 2, "ts": "2026-03-01T10:00:01+00:00"})
    c.add_location({"asset_id": 1, "x": 3, "ts": "2026-03-01T10:00:02+00:00"})
    c.add_status({"asset_id": 1, "status": "in-use", "presence": "present"})
    c.add_location({"asset_id": 1, "x": 0, "ts": "2026-03-01T09:59:59+00:00"})  # late, ignored
    assert c.next_due() == 101.0
    assert c.take_due(now=100.5) == []
    (sent,) = c.take_due(now=101.0)
    assert (sent["x"], sent["status"]) == (3, "in-use")
    assert c.next_due() is None


def test_the_coalescer_ignores_updates_older_than_the_snapshot():
    c = Coalescer(interval_s=1.0)
    c.seen({"asset_id": 4, "ts": "2026-03-01T10:00:05Z"})
    c.add_location({"asset_id": 4, "x": 9, "ts": "2026-03-01T10:00:04Z"})
    assert c.next_due() is None


# -- the websocket over the in-memory layer ---------------------------------------------------


@live_db
def test_a_nurse_gets_the_snapshot_then_updates(in_memory_layer, isolated_metrics):
    w = ward()
    headers = session_headers(person("nurse-ws", NURSE))
    pump, chair = w.assets["Pump A"], w.assets["Chair 1"]

    async def scenario():
        ws = communicator(w.floor.pk, headers)
        assert await ws.connect(timeout=5) == (True, None)
        snapshot = await ws.receive_json_from()
        assert snapshot["type"] == "snapshot"
        assert snapshot["floor_id"] == w.floor.pk
        by_name = {a["name"]: a for a in snapshot["assets"]}
        assert sorted(by_name) == ["Chair 1", "Pump A", "Pump B"]
        assert by_name["Pump A"]["zone"] == "Room 301"
        assert by_name["Pump A"]["battery_pct"] == 87.0
        assert by_name["Chair 1"]["presence"] == "missing"
        counters, _ = await sync_to_async(observability.read_shared)()
        assert counters["websocket_clients"] == 1

        now = timezone.now()
        await publish([update(pump, w.floor, 5, now)])
        message = await ws.receive_json_from(timeout=2)
        assert message["type"] == "updates"
        assert message["assets"] == [update(pump, w.floor, 5, now)]

        await publish_status(chair.pk, w.floor.pk, "needs-cleaning", "present")
        message = await ws.receive_json_from(timeout=2)
        assert message["assets"] == [
            {
                "asset_id": chair.pk,
                "floor_id": w.floor.pk,
                "status": "needs-cleaning",
                "presence": "present",
            }
        ]
        await ws.send_json_to({"type": "ping"})
        assert await ws.receive_json_from() == {"type": "pong"}
        await ws.disconnect()
        counters, _ = await sync_to_async(observability.read_shared)()
        assert counters["websocket_clients"] == 0

    async_to_sync(scenario)()


@live_db
def test_many_updates_within_a_second_arrive_as_one_message_with_the_latest(in_memory_layer):
    w = ward()
    headers = session_headers(person("nurse-burst", NURSE))
    pump, other = w.assets["Pump A"], w.assets["Pump B"]

    async def scenario():
        ws = communicator(w.floor.pk, headers)
        await ws.connect(timeout=5)
        await ws.receive_json_from()
        t0 = timezone.now()
        await publish([update(pump, w.floor, 0, t0), update(other, w.floor, 0, t0)])
        first = await ws.receive_json_from(timeout=2)
        sent_at = time.monotonic()
        assert len(first["assets"]) == 2
        for i in range(1, 21):
            ts = t0 + timedelta(milliseconds=20 * i)
            await publish([update(pump, w.floor, i, ts)])
            await publish([update(other, w.floor, 100 + i, ts)])
        second = await ws.receive_json_from(timeout=3)
        assert time.monotonic() - sent_at >= 0.9
        assert {a["asset_id"]: a["x"] for a in second["assets"]} == {
            pump.pk: 20.0,
            other.pk: 120.0,
        }
        assert await ws.receive_nothing(timeout=1.3)
        await ws.disconnect()

    async_to_sync(scenario)()


@live_db
def test_an_asset_leaving_the_floor_is_announced_there(in_memory_layer):
    w = ward()
    headers = session_headers(person("nurse-move", NURSE))
    pump = w.assets["Pump A"]

    async def scenario():
        ws = communicator(w.floor.pk, headers)
        await ws.connect(timeout=5)
        await ws.receive_json_from()
        moved = update(pump, w.other_floor, 3, timezone.now(), previous_floor_id=w.floor.pk)
        await publish([moved])
        (sent,) = (await ws.receive_json_from(timeout=2))["assets"]
        assert (sent["asset_id"], sent["floor_id"]) == (pump.pk, w.other_floor.pk)
        await ws.disconnect()

    async_to_sync(scenario)()


@pytest.mark.services
@live_db
def test_the_snapshot_judges_each_room_and_a_silenced_scanner_is_pushed(in_memory_layer):
    """Honest location on the wire: quality, confidence and the last confirmed room in the
    snapshot; when the scanner of Pump A's room goes offline the map hears at once."""
    w = ward()
    gateway = ScannerFactory(serial="gw-301", floor=w.floor, x=2.5, y=2.5)  # in Room 301
    long_ago = timezone.now() - timedelta(minutes=20)
    ScannerHealth.objects.create(
        scanner=gateway, online=True, last_batch_at=long_ago, last_heartbeat_at=long_ago
    )
    headers = session_headers(person("nurse-honest", NURSE))
    pump = w.assets["Pump A"]

    async def scenario():
        ws = communicator(w.floor.pk, headers)
        await ws.connect(timeout=5)
        snapshot = await ws.receive_json_from()
        by_name = {a["name"]: a for a in snapshot["assets"]}
        assert by_name["Pump A"]["quality"] == "confirmed"
        assert by_name["Pump A"]["zone_confidence"] == 0.97
        assert by_name["Pump A"]["last_confirmed_zone"] == "Room 301"
        assert by_name["Pump A"]["last_confirmed_zone_id"] == w.rooms[0].pk
        assert by_name["Chair 1"]["quality"] == "stale"
        assert by_name["Chair 1"]["quality_reasons"][0] == "not-heard"
        assert set(live.LOCATION_FIELDS) <= set(by_name["Pump B"])

        assert await sync_to_async(presence.mark_offline_scanners)() == 1
        message = await ws.receive_json_from(timeout=2)
        assert message["assets"] == [
            {
                "asset_id": pump.pk,
                "floor_id": w.floor.pk,
                "quality": "uncertain",
                "quality_reasons": ["scanners-offline"],
            }
        ]
        await ws.disconnect()

    async_to_sync(scenario)()


@live_db
def test_refusals_close_with_application_codes(in_memory_layer, isolated_metrics):
    w = ward()
    nobody = session_headers(person("no-role"))
    nurse = session_headers(person("nurse-404", NURSE))

    async def refused(floor_id, headers=None) -> int:
        ws = communicator(floor_id, headers)
        assert (await ws.connect(timeout=5))[0] is True
        closed = await ws.receive_output(timeout=2)
        assert closed["type"] == "websocket.close"
        await ws.disconnect()
        return closed["code"]

    async def scenario():
        assert await refused(w.floor.pk) == 4401
        assert await refused(w.floor.pk, nobody) == 4403
        assert await refused(999999, nurse) == 4404
        counters, _ = await sync_to_async(observability.read_shared)()
        assert counters.get("websocket_clients", 0) == 0

    async_to_sync(scenario)()


def test_a_foreign_origin_is_refused():
    async def scenario():
        ws = WebsocketCommunicator(
            application, "/ws/floors/1/", headers=[(b"origin", b"https://evil.example")]
        )
        connected, _ = await ws.connect(timeout=5)
        assert connected is False

    async_to_sync(scenario)()


# -- the real Redis channel layer, and a real server ------------------------------------------

needs_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL")


@pytest.mark.services
@needs_redis
@live_db
def test_updates_travel_over_the_redis_channel_layer():
    assert "RedisChannelLayer" in settings.CHANNEL_LAYERS["default"]["BACKEND"]
    w = ward()
    headers = session_headers(person("nurse-redis", NURSE))
    pump = w.assets["Pump B"]

    async def scenario():
        ws = communicator(w.floor.pk, headers)
        await ws.connect(timeout=5)
        assert (await ws.receive_json_from(timeout=3))["type"] == "snapshot"
        now = timezone.now()
        await publish([update(pump, w.floor, 8, now, status="in-use")])
        message = await ws.receive_json_from(timeout=3)
        assert message["assets"] == [update(pump, w.floor, 8, now, status="in-use")]
        await ws.disconnect()

    async_to_sync(scenario)()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def daphne_server():
    """daphne serving the project on an ephemeral port, against the test database."""
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}/"
        f"{db['NAME']}"
    )
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": settings.REDIS_URL}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "hospital.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz/", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"daphne did not start: {process.stderr.read().decode()[-2000:]}")
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def log_in(base: str, username: str) -> str:
    """Sign in through the login form, as a browser does; returns the session cookie."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base}/accounts/login/", timeout=5) as response:
        page = response.read().decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": csrf}
    ).encode()
    with opener.open(f"{base}/accounts/login/", data=form, timeout=5) as response:
        assert response.status == 200
    cookies = {c.name: c.value for c in jar}
    return f"{settings.SESSION_COOKIE_NAME}={cookies[settings.SESSION_COOKIE_NAME]}"


@pytest.mark.e2e
@pytest.mark.services
@needs_redis
@live_db
def test_through_daphne_with_a_real_login(daphne_server):
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    w = ward()
    person("nurse-e2e", NURSE)
    pump = w.assets["Pump A"]
    cookie = log_in(daphne_server, "nurse-e2e")
    url = daphne_server.replace("http", "ws", 1) + f"/ws/floors/{w.floor.pk}/"

    async def scenario():
        async with connect(url, origin=daphne_server, additional_headers={"Cookie": cookie}) as ws:
            snapshot = await asyncio.wait_for(ws.recv(), 10)
            assert '"type": "snapshot"' in snapshot
            now = timezone.now()
            await asyncio.to_thread(live.publish_location_updates, [update(pump, w.floor, 6, now)])
            message = await asyncio.wait_for(ws.recv(), 10)
            assert f'"asset_id": {pump.pk}' in message
            assert '"x": 6.0' in message
        async with connect(url, origin=daphne_server) as anonymous:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(anonymous.recv(), 10)
        assert closed.value.rcvd.code == 4401

    asyncio.run(scenario())
