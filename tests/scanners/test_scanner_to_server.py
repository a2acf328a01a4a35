"""End to end: the scanner agent uploads to the real ingestion API, and a position comes out;
a spooled backlog of relayed cold-chain readings is stored whole."""

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections
from scanner_fakes import FakeLlrpReader, tag_report_epc96

from environment.models import EnvironmentReading
from hospital.devices import issue_token
from scanners.agent import Agent
from scanners.config import load_config
from scanners.spool import Spool
from scanners.uploader import HttpClient, Uploader
from tests.factories import (
    AssetFactory,
    ColdChainSensorFactory,
    FloorFactory,
    ScannerFactory,
    TagFactory,
    ZoneFactory,
)
from tracking import bus, pipeline
from tracking.models import AssetLocation, ScannerHealth

EPC = "3034257bf7194e4000001a85"
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def agent_config(tmp_path, server_url: str, token: str, llrp_port: int):
    path = tmp_path / "agent.toml"
    path.write_text(
        f"""
[server]
url = "{server_url}"
token = "{token}"
[filters]
epc_prefixes = ["3034"]
[ble]
enabled = false
[rfid]
enabled = true
host = "127.0.0.1"
port = {llrp_port}
[batching]
interval_ms = 200
[spool]
path = "{tmp_path / "spool.sqlite3"}"
[heartbeat]
interval_s = 0.5
"""
    )
    return load_config(path, environ={})


def test_an_rfid_read_becomes_a_position_in_the_reader_s_room(live_server, redis_bus, tmp_path):
    floor = FloorFactory(width_m=20, height_m=10)
    room = ZoneFactory(
        floor=floor, name="Store 1", kind="storage", polygon=[[0, 0], [5, 0], [5, 5], [0, 5]]
    )
    ZoneFactory(floor=floor, name="Ward", polygon=[[5, 0], [20, 0], [20, 10], [5, 10]])
    reader = ScannerFactory(serial="rfid-store-1", kind="rfid", floor=floor, x=2.5, y=2.5)
    asset = AssetFactory(name="Pump 42")
    TagFactory(tag_id=f"rfid:{EPC}", asset=asset)
    token = issue_token(scanner=reader)
    reports = [tag_report_epc96(bytes.fromhex(EPC), -52, 1, 0)]

    with FakeLlrpReader(reports) as fake_reader:
        agent = Agent(agent_config(tmp_path, live_server.url, token, fake_reader.port))

        async def run_until_located():
            stop = asyncio.Event()
            running = asyncio.create_task(agent.run(stop))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if await asyncio.to_thread(drain_and_check, asset):
                    break
                await asyncio.sleep(0.3)
            stop.set()
            await asyncio.wait_for(running, 20)

        asyncio.run(run_until_located())

    location = AssetLocation.objects.get(asset=asset)
    assert location.zone == room
    assert location.floor == floor
    health = ScannerHealth.objects.get(scanner=reader)
    assert health.readings_accepted > 0
    assert health.agent_version


def drain_and_check(asset) -> bool:
    """Run every shard's processing (what the Celery workers do) and see if the asset is placed."""
    try:
        for shard in range(bus.shard_count()):
            pipeline.process_shard(shard)
        return AssetLocation.objects.filter(asset=asset).exists()
    finally:
        connections.close_all()


def relayed_reading(sensor: str, seconds_ago: float, temperature: float = 4.0) -> dict:
    moment = datetime.now(tz=UTC) - timedelta(seconds=seconds_ago)
    return {"sensor": sensor, "ts": moment.isoformat(), "temperature_c": temperature}


@pytest.fixture
def relaying_gateway(settings):
    settings.WARDWISE = {**settings.WARDWISE, "DEVICE_RATE_PER_S": 1_000}
    gateway = ScannerFactory(serial="gw-cold-room")
    sensor = ColdChainSensorFactory(serial="fridge-relayed-1", gateway=gateway)
    return sensor, issue_token(scanner=gateway)


def test_a_gateways_backlog_is_stored_whole_in_one_request(live_server, relaying_gateway, tmp_path):
    sensor, token = relaying_gateway
    spool = Spool(tmp_path / "spool.sqlite3")
    for second in range(30):
        spool.put("environment", [relayed_reading(sensor.serial, 60 - second)])
    spool.put("environment", [relayed_reading("not-relayed-here", 20)])
    uploader = Uploader(spool, HttpClient(live_server.url, lambda: token))

    assert uploader.step() == 0.0

    assert EnvironmentReading.objects.filter(sensor=sensor).count() == 30
    assert spool.depth().batches == 0
    counters = spool.counters()
    assert (counters["upload_requests"], counters["uploaded_batches"]) == (1, 31)
    assert (counters["uploaded_readings"], counters["rejected_readings"]) == (30, 1)


def test_a_server_with_a_lower_batch_limit_still_gets_every_reading(
    live_server, relaying_gateway, settings, tmp_path
):
    sensor, token = relaying_gateway
    settings.WARDWISE = {**settings.WARDWISE, "MAX_BATCH_READINGS": 10}
    spool = Spool(tmp_path / "spool.sqlite3")
    for second in range(12):
        spool.put("environment", [relayed_reading(sensor.serial, 60 - second)])
    uploader = Uploader(spool, HttpClient(live_server.url, lambda: token))

    for _ in range(13):
        assert uploader.step() == 0.0

    assert EnvironmentReading.objects.filter(sensor=sensor).count() == 12
    counters = spool.counters()
    assert counters["split_uploads"] == 1
    assert counters["uploaded_readings"] == 12
    assert "poison_readings" not in counters
