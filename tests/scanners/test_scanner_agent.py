"""The whole agent: advertisements and an LLRP reader in, filtered batches and heartbeats out."""

import asyncio
import time

from scanner_fakes import FakeLlrpReader, IngestServer, tag_report_epc96
from test_scanner_frames import EDDYSTONE_TLM_ADV, EDDYSTONE_UID_ADV, IBEACON_ADV

from scanners.agent import Agent
from scanners.ble_frames import parse_ad_structures
from scanners.config import load_config

HOSPITAL_UUID = "f7826da6-4fa2-4e98-8024-bc5b71e0893e"


def agent_config(tmp_path, server_url: str, llrp_port: int):
    path = tmp_path / "agent.toml"
    path.write_text(
        f"""
[server]
url = "{server_url}"
token = "agent-test-token"
[filters]
ibeacon_uuids = ["{HOSPITAL_UUID}"]
eddystone_namespaces = ["edd1ebeac04e5defa017"]
epc_prefixes = ["3034"]
[ble]
enabled = false
[rfid]
enabled = true
host = "127.0.0.1"
port = {llrp_port}
[batching]
interval_ms = 200
[aggregation]
interval_ms = 300
[spool]
path = "{tmp_path / "spool.sqlite3"}"
[heartbeat]
interval_s = 0.5
"""
    )
    return load_config(path, environ={})


def test_agent_end_to_end(tmp_path):
    reports = [
        tag_report_epc96(bytes.fromhex("3034257bf7194e4000001a85"), -55, 1, 0),
        tag_report_epc96(bytes.fromhex("e2801160600002aa00000000"), -50, 1, 0),  # not ours
    ]
    with IngestServer() as server, FakeLlrpReader(reports) as reader:
        config = agent_config(tmp_path, server.url, reader.port)
        agent = Agent(config)

        async def scenario():
            stop = asyncio.Event()
            running = asyncio.create_task(agent.run(stop))
            ibeacon = parse_ad_structures(IBEACON_ADV)
            uid = parse_ad_structures(EDDYSTONE_UID_ADV)
            tlm = parse_ad_structures(EDDYSTONE_TLM_ADV)
            phone = ({0x004C: bytes.fromhex("1005031c5a8f41")}, {})
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                agent.on_advertisement("60:00:00:00:00:02", -61, *ibeacon)
                agent.on_advertisement("C0:00:00:00:00:01", -70, *uid)
                agent.on_advertisement("C0:00:00:00:00:01", -70, *tlm)
                agent.on_advertisement("4A:1B:2C:3D:4E:5F", -40, *phone)
                tags = {
                    r["tag"]
                    for post in server.posted("/api/v1/readings/rssi/")
                    for r in post["body"]["readings"]
                }
                if len(tags) >= 3 and server.posted("/api/v1/scanners/heartbeat/"):
                    break
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.wait_for(running, 20)

        asyncio.run(scenario())

    rssi_posts = server.posted("/api/v1/readings/rssi/")
    uploaded = {r["tag"] for post in rssi_posts for r in post["body"]["readings"]}
    assert uploaded == {
        f"ibeacon:{HOSPITAL_UUID}:1:2",
        "eddystone:edd1ebeac04e5defa017:0123456789ab",
        "rfid:3034257bf7194e4000001a85",
    }
    assert all(post["auth"] == "Token agent-test-token" for post in rssi_posts)
    assert all(post["body"]["batch"] for post in rssi_posts)
    environment = server.posted("/api/v1/readings/environment/")
    assert environment[0]["body"]["readings"][0]["sensor"] == (
        "eddystone:edd1ebeac04e5defa017:0123456789ab"
    )
    heartbeat = server.posted("/api/v1/scanners/heartbeat/")[0]["body"]
    assert heartbeat["agent_version"]
    assert heartbeat["uptime_s"] >= 0
    assert {"spool_depth", "dropped_evicted", "dropped_poison", "sources"} <= heartbeat.keys()
    assert heartbeat["sources"]["rfid"] in ("connecting", "inventorying", "disconnected")
