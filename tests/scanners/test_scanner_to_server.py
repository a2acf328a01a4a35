"""End to end: the scanner agent uploads to the real ingestion API, and a position comes out."""

import asyncio
import time

import pytest
from django.db import connections
from scanner_fakes import FakeLlrpReader, tag_report_epc96

from hospital.devices import issue_token
from scanners.agent import Agent
from scanners.config import load_config
from tests.factories import AssetFactory, FloorFactory, ScannerFactory, TagFactory, ZoneFactory
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
