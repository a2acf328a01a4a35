"""The demo's simulated fridge probes through the real ingestion path: a live HTTP server, each
sensor's own token, the demo timing; the failing fridge's alert opens, goes critical, reaches the
facilities console's group and resolves after the repair, and nothing else alerts."""

from __future__ import annotations

import asyncio
import time
from io import StringIO
from pathlib import Path

import pytest
from channels.layers import get_channel_layer
from django.core.management import call_command

from alerts import live
from alerts.models import Alert, AlertEvent
from environment import rules
from environment.demo import use_demo_timing
from environment.models import EnvironmentReading, Sensor
from environment.simulation import Failure
from tracking.management.commands.simulate import make_feed

DEMO_SITE = Path(__file__).resolve().parents[2] / "hospital" / "fixtures" / "demo_site.json"
pytestmark = pytest.mark.django_db(transaction=True)


def test_the_failing_demo_fridge_raises_one_alert_through_the_ingestion_api(live_server):
    call_command("load_site", str(DEMO_SITE), stdout=StringIO())
    assert use_demo_timing() == 8
    assert set(Sensor.objects.values_list("expected_interval_s", flat=True)) == {10}
    layer = get_channel_layer()
    # One event loop for the console's side: the Redis layer binds its receive buffers to it.
    loop = asyncio.new_event_loop()
    console = loop.run_until_complete(layer.new_channel())
    loop.run_until_complete(layer.group_add(live.GROUP, console))
    feed = make_feed(live_server.url, failure=Failure("fridge-ward-1", start_after_s=30))
    assert len(feed.sensor_tokens) == 8
    feed.timeout_s = 60
    # Fifteen minutes of the demo, replayed into the recent past in 30 s steps of event time;
    # the console's messages are read as they come (the Redis layer expires them after 30 s).
    start = time.time() - 15 * 60
    feed.sensors.restart(start)
    moment, seen = start, []
    while moment <= start + 15 * 60:
        feed.step_sensors(moment)
        seen += drain(loop, layer, console)
        moment += 30
    assert feed.failed_batches == 0
    assert EnvironmentReading.objects.count() == feed.sensor_readings_sent >= 8 * 85
    [alert] = Alert.objects.all()
    assert alert.sensor.serial == "fridge-ward-1"
    assert alert.kind == rules.TEMPERATURE_HIGH
    assert alert.severity == "critical"
    assert alert.state == "resolved"
    assert alert.resolved_automatically
    assert alert.peak_value >= 12.0
    kinds = list(alert.events.values_list("kind", flat=True))
    assert kinds[0] == AlertEvent.Kind.OPENED
    assert AlertEvent.Kind.ESCALATED_SEVERITY in kinds
    assert kinds[-1] == AlertEvent.Kind.RESOLVED
    assert 60 <= (alert.started_at.timestamp() - start) <= 180, "above 8 °C 1-2.5 min in"
    seen += drain(loop, layer, console, wait_s=1.0)
    loop.close()
    assert seen[0] == ("opened", "fridge-ward-1")
    assert seen[-1] == ("resolved", "fridge-ward-1")


def drain(loop, layer, channel, wait_s: float = 0.1) -> list[tuple[str, str]]:
    """(event, sensor) of every message waiting on the console's channel."""

    async def receive():
        return await asyncio.wait_for(layer.receive(channel), timeout=wait_s)

    seen = []
    while True:
        try:
            message = loop.run_until_complete(receive())
        except TimeoutError:
            return seen
        seen.append((message["event"], message["alert"]["sensor"]))
