"""The MQTT bridge against the real Mosquitto broker: messages published with paho reach the
reading bus through the same intake as the REST API and become positions; bad messages are
counted, never fatal; the bridge comes back after the broker restarts."""

import json
import shutil
import socket
import subprocess
import time
import uuid
from datetime import UTC, datetime

import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hospital.devices import issue_token
from integrations.bridge import Bridge, BridgeConfig
from tests.factories import AssetFactory, FloorFactory, ScannerFactory, TagFactory, ZoneFactory
from tracking import activity, bus, pipeline
from tracking.models import AssetLocation, ScannerHealth

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
BROKER = ("127.0.0.1", 1883)


def broker_up(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def wait_for(condition, timeout: float = 15.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def publisher(host: str, port: int) -> paho.Client:
    client = paho.Client(
        paho.CallbackAPIVersion.VERSION2,
        client_id=f"test-pub-{uuid.uuid4().hex[:8]}",
        protocol=paho.MQTTv5,
    )
    client.connect(host, port)
    client.loop_start()
    return client


def publish(client: paho.Client, topic: str, payload, properties=None) -> None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    client.publish(topic, data, qos=1, properties=properties).wait_for_publish(timeout=5)


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


@pytest.fixture
def ward(redis_bus, settings):
    if not broker_up(*BROKER):
        pytest.fail("Mosquitto is not running on 127.0.0.1:1883 (scripts/ensure-services.sh)")
    settings.WARDWISE = {**settings.WARDWISE, "LATE_ALLOWANCE_S": 0.5, "HOLD_MAX_S": 1.0}
    floor = FloorFactory(width_m=20, height_m=6)
    west = ZoneFactory(floor=floor, name="West", polygon=[[0, 0], [10, 0], [10, 6], [0, 6]])
    ZoneFactory(floor=floor, name="East", polygon=[[10, 0], [20, 0], [20, 6], [10, 6]])
    west_gw = ScannerFactory(serial=f"w-{uuid.uuid4().hex[:6]}", floor=floor, x=5, y=3)
    east_gw = ScannerFactory(serial=f"AC233F{uuid.uuid4().hex[:6].upper()}", floor=floor, x=15, y=3)
    tag = TagFactory(
        asset=AssetFactory(name="Pump 1"),
        tag_id="ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:7:7",
    )
    return {
        "west": west,
        "asset": tag.asset,
        "tag": tag.tag_id,
        "west_gw": west_gw,
        "east_gw": east_gw,
        "west_token": issue_token(scanner=west_gw),
        "east_token": issue_token(scanner=east_gw),
        "prefix": f"test-{uuid.uuid4().hex[:8]}",
    }


@pytest.fixture
def bridge(ward):
    config = BridgeConfig(
        host=BROKER[0],
        port=BROKER[1],
        client_id=f"test-bridge-{uuid.uuid4().hex[:8]}",
        topics=[f"{ward['prefix']}/#"],
    )
    running = Bridge(config)
    running.start()
    assert running.connected.wait(10), "the bridge did not connect to Mosquitto"
    yield running
    running.stop()


def bus_readings() -> list[tuple[str, str]]:
    """(scanner serial, tag) of every reading on the bus."""
    found = []
    for shard in range(bus.shard_count()):
        for _id, fields in bus.client().xrange(bus.STREAM_KEY.format(shard)):
            found += [(fields[b"s"].decode(), row[1]) for row in json.loads(fields[b"r"])]
    return found


def test_plain_and_minew_messages_become_a_position(ward, bridge):
    client = publisher(*BROKER)
    start = time.time() - 20
    west_readings = [
        {"tag": ward["tag"], "rssi": -55, "ts": iso(start + i * 0.5)} for i in range(30)
    ]
    east_adverts = [{"timestamp": iso(start), "type": "Gateway", "mac": ward["east_gw"].serial}]
    east_adverts += [
        {
            "timestamp": iso(start + i * 0.5 + 0.01),
            "type": "iBeacon",
            "mac": "AC233F000007",
            "rssi": -80,
            "ibeaconUuid": "F7826DA64FA24E988024BC5B71E0893E",
            "ibeaconMajor": 7,
            "ibeaconMinor": 7,
            "battery": 77,
        }
        for i in range(30)
    ]
    try:
        publish(
            client,
            f"{ward['prefix']}/{ward['west_gw'].serial}/rssi",
            {"token": ward["west_token"], "readings": west_readings},
        )
        publish(
            client,
            f"{ward['prefix']}/{ward['east_gw'].serial}/minew/{ward['east_token']}",
            east_adverts,
        )
        assert wait_for(lambda: bridge.stats["readings_accepted"] == 60), dict(bridge.stats)
    finally:
        client.disconnect()
        client.loop_stop()
    on_bus = bus_readings()
    assert on_bus.count((ward["west_gw"].serial, ward["tag"])) == 30
    assert on_bus.count((ward["east_gw"].serial, ward["tag"])) == 30
    activity.write_all()  # counts reach the health rows at the next periodic write
    health = ScannerHealth.objects.get(scanner=ward["east_gw"])
    assert health.readings_accepted == 30
    for shard in range(bus.shard_count()):
        pipeline.process_shard(shard, now=time.time() + 30)
    location = AssetLocation.objects.get(asset=ward["asset"])
    assert location.zone == ward["west"]


def test_gateways_must_present_their_own_token(ward, bridge):
    client = publisher(*BROKER)
    reading = {"tag": ward["tag"], "rssi": -60, "ts": iso(time.time() - 1)}
    topic = f"{ward['prefix']}/{ward['west_gw'].serial}/rssi"
    try:
        publish(client, topic, {"readings": [reading]})
        publish(client, topic, {"token": ward["east_token"], "readings": [reading]})
        publish(client, f"{ward['prefix']}/no-such-gateway/rssi", {"readings": [reading]})
        assert wait_for(lambda: bridge.stats["unauthorised"] == 3), dict(bridge.stats)
        properties = Properties(PacketTypes.PUBLISH)
        properties.UserProperty = ("token", ward["west_token"])
        publish(client, topic, {"readings": [reading]}, properties)
        assert wait_for(lambda: bridge.stats["accepted"] == 1), dict(bridge.stats)
    finally:
        client.disconnect()
        client.loop_stop()
    assert bus_readings() == [(ward["west_gw"].serial, ward["tag"])]


def test_bad_payloads_are_counted_and_the_bridge_carries_on(ward, bridge):
    client = publisher(*BROKER)
    serial, token = ward["west_gw"].serial, ward["west_token"]
    good = {"tag": ward["tag"], "rssi": -60, "ts": iso(time.time() - 1)}
    try:
        publish(client, f"{ward['prefix']}/{serial}/rssi/{token}", b"\xff not json")
        publish(client, f"{ward['prefix']}/{serial}/rssi/{token}", {"readings": "nope"})
        publish(client, f"{ward['prefix']}/{serial}/minew/{token}", {"not": "an array"})
        publish(client, f"{ward['prefix']}/{serial}/unknown-shape", {"readings": []})
        publish(
            client,
            f"{ward['prefix']}/{serial}/rssi/{token}",
            {"readings": [good, {"tag": "ibeacon:nope", "rssi": -60, "ts": good["ts"]}]},
        )
        assert wait_for(lambda: bridge.stats["accepted"] == 1), dict(bridge.stats)
        assert bridge.stats["malformed"] == 4
        assert bridge.stats["readings_rejected"] == 1
        resend = {"batch": "b-1", "readings": [good]}
        publish(client, f"{ward['prefix']}/{serial}/rssi/{token}", resend)
        publish(client, f"{ward['prefix']}/{serial}/rssi/{token}", resend)
        assert wait_for(lambda: bridge.stats["duplicate"] == 1), dict(bridge.stats)
    finally:
        client.disconnect()
        client.loop_stop()
    assert bus_readings().count((serial, ward["tag"])) == 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_broker(port: int) -> subprocess.Popen:
    broker = subprocess.Popen(
        [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert wait_for(lambda: broker_up("127.0.0.1", port), 10), "mosquitto did not start"
    return broker


def test_the_bridge_reconnects_after_the_broker_restarts(ward):
    port = free_port()
    broker = start_broker(port)
    config = BridgeConfig(
        host="127.0.0.1",
        port=port,
        client_id=f"test-bridge-{uuid.uuid4().hex[:8]}",
        topics=[f"{ward['prefix']}/#"],
    )
    bridge = Bridge(config)
    bridge.start()
    try:
        assert bridge.connected.wait(10)
        broker.terminate()
        broker.wait(10)
        assert wait_for(lambda: not bridge.connected.is_set(), 10)
        broker = start_broker(port)
        assert bridge.connected.wait(40), "the bridge did not reconnect"
        client = publisher("127.0.0.1", port)
        topic = f"{ward['prefix']}/{ward['west_gw'].serial}/rssi/{ward['west_token']}"
        publish(client, topic, {"readings": [{"tag": ward["tag"], "rssi": -60, "ts": time.time()}]})
        client.disconnect()
        assert wait_for(lambda: bridge.stats["accepted"] == 1), dict(bridge.stats)
        assert bridge.stats["connects"] == 2
    finally:
        bridge.stop()
        broker.terminate()
        broker.wait(10)


def test_broker_mode_trusts_the_topic_serial_but_not_unknown_gateways(ward):
    bridge = Bridge(BridgeConfig(gateway_auth="broker", client_id="unused"))
    reading = {"tag": ward["tag"], "rssi": -60, "ts": time.time() - 1}
    body = json.dumps({"readings": [reading]}).encode()
    accepted = bridge.handle(f"wardwise/{ward['west_gw'].serial}/rssi", body)
    assert accepted["outcome"] == "accepted"
    assert accepted["accepted"] == 1
    assert bridge.handle("wardwise/stranger/rssi", body)["outcome"] == "unauthorised"
    assert bridge.handle("no-shape-here", body)["outcome"] == "malformed"


def seed_backlog(shard: int, age_s: float) -> bytes:
    """An unprocessed entry on `shard`, `age_s` old by the Redis clock."""
    seconds, micros = bus.client().time()
    oldest_ms = seconds * 1000 + micros // 1000 - int(age_s * 1000)
    stream = bus.STREAM_KEY.format(shard)
    return bus.client().xadd(stream, {"s": "gw-old", "t": "0", "r": "[]"}, id=f"{oldest_ms}-0")


def test_an_overloaded_batch_is_not_taken_and_says_when_to_retry(ward, settings):
    settings.WARDWISE = {**settings.WARDWISE, "MAX_BACKLOG_S": 60}
    seed_backlog(bus.shard_of(ward["tag"]), age_s=90)
    bridge = Bridge(BridgeConfig(gateway_auth="broker", client_id="unused"))
    body = json.dumps({"readings": [{"tag": ward["tag"], "rssi": -60, "ts": time.time() - 1}]})
    outcome = bridge.handle(f"wardwise/{ward['west_gw'].serial}/rssi", body.encode())
    assert outcome["outcome"] == "overloaded"
    assert outcome["retry_after_s"] == 30
    assert "behind on shard" in outcome["detail"]
    assert bus_readings() == []
    assert bridge.stats["overloaded"] == 1


def test_redis_down_leaves_the_message_to_retry(ward, settings):
    bridge = Bridge(BridgeConfig(gateway_auth="broker", client_id="unused"))
    body = json.dumps({"readings": [{"tag": ward["tag"], "rssi": -60, "ts": time.time() - 1}]})
    bus._client_for.cache_clear()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    try:
        outcome = bridge.handle(f"wardwise/{ward['west_gw'].serial}/rssi", body.encode())
    finally:
        bus._client_for.cache_clear()
    assert outcome == {"outcome": "unavailable", "retry_after_s": 5}


def test_overloaded_messages_wait_unacknowledged_and_arrive_in_order(ward, bridge, settings):
    settings.WARDWISE = {**settings.WARDWISE, "MAX_BACKLOG_S": 60}
    shard = bus.shard_of(ward["tag"])
    entry = seed_backlog(shard, age_s=61)  # Retry-After 2 s
    client = publisher(*BROKER)
    topic = f"{ward['prefix']}/{ward['west_gw'].serial}/rssi/{ward['west_token']}"
    start = time.time() - 10
    try:
        for i in range(3):
            reading = {"tag": ward["tag"], "rssi": -60, "ts": start + i}
            publish(client, topic, {"batch": f"in-order-{i}", "readings": [reading]})
        assert wait_for(lambda: bridge.deferred == 3), (dict(bridge.stats), bridge.deferred)
        assert bridge.stats["overloaded"] >= 1
        assert bridge.stats["accepted"] == 0
        assert bus_readings() == []
        bus.client().set(pipeline.CURSOR_KEY.format(shard), entry)  # the workers caught up
        assert wait_for(lambda: bridge.stats["accepted"] == 3), dict(bridge.stats)
    finally:
        client.disconnect()
        client.loop_stop()
    assert bridge.deferred == 0
    entries = bus.client().xrange(bus.STREAM_KEY.format(shard), min=b"(" + entry)
    stamps = [row[0] for _id, fields in entries for row in json.loads(fields[b"r"])]
    assert stamps == [start, start + 1, start + 2]


def test_a_bridge_stopped_while_overloaded_gets_its_messages_again(ward, settings):
    settings.WARDWISE = {**settings.WARDWISE, "MAX_BACKLOG_S": 60}
    shard = bus.shard_of(ward["tag"])
    entry = seed_backlog(shard, age_s=61)
    config = BridgeConfig(
        host=BROKER[0],
        port=BROKER[1],
        client_id=f"test-bridge-{uuid.uuid4().hex[:8]}",
        topics=[f"{ward['prefix']}/#"],
    )
    first = Bridge(config)
    first.start()
    client = publisher(*BROKER)
    topic = f"{ward['prefix']}/{ward['west_gw'].serial}/rssi/{ward['west_token']}"
    try:
        assert first.connected.wait(10)
        publish(client, topic, {"readings": [{"tag": ward["tag"], "rssi": -60, "ts": time.time()}]})
        assert wait_for(lambda: first.stats["overloaded"] >= 1), dict(first.stats)
    finally:
        first.stop()
        client.disconnect()
        client.loop_stop()
    bus.client().set(pipeline.CURSOR_KEY.format(shard), entry)
    second = Bridge(config)  # same client id: the broker resumes the session
    second.start()
    try:
        assert wait_for(lambda: second.stats["accepted"] == 1), dict(second.stats)
    finally:
        second.stop()
    assert bus_readings() == [(ward["west_gw"].serial, ward["tag"])]
