"""The cold-chain benchmark's relaying gateways (`python -m bench.coldchain --relay`): each sends
its sensors' readings in batches, every reading exactly once, and a reading counts as
acknowledged only when its batch got a 2xx and the reading was not rejected."""

import asyncio
import json
import time

from bench.coldchaingen import Tally, gateway_loop

CONFIG = {
    "interval_s": 0.2,
    "batch_s": 0.1,
    "alarm_delay_s": 0.4,
    "excursion_one_in": 2,
    "excursion_every_s": 1.0,
    "excursion_readings": 3,
    "seed": 7,
    "base_url": "http://gateway.test",
    "sensor_count": 3,
}


class _Answer:
    def __init__(self, status: int, body: dict, delay_s: float = 0.0) -> None:
        self.status, self.body, self.delay_s = status, body, delay_s

    async def __aenter__(self):
        await asyncio.sleep(self.delay_s)
        return self

    async def __aexit__(self, *exc):
        return False

    async def read(self) -> bytes:
        return json.dumps(self.body).encode()


class FakeServer:
    """Answers like the ingestion endpoint; refuses every third batch, and rejects the first
    reading of every batch it accepts."""

    def __init__(self, answer_s: float = 0.0) -> None:
        self.batches: list[dict] = []
        self.answer_s = answer_s

    def post(self, url, data, headers):
        batch = json.loads(data)
        self.batches.append(batch)
        if len(self.batches) % 3 == 0:
            return _Answer(503, {"detail": "try later"}, self.answer_s)
        readings = batch["readings"]
        rejected = [{"index": 0, "reason": "test"}]
        return _Answer(
            202,
            {"accepted": len(readings) - 1, "duplicates": 0, "rejected": rejected},
            self.answer_s,
        )


def run_gateway(server: FakeServer, tally: Tally) -> None:
    config = {**CONFIG, "start_at": time.time(), "duration_s": 1.0}
    tally.start = config["start_at"]
    members = [(0, "fridge-a"), (1, "fridge-b"), (2, "fridge-c")]
    asyncio.run(gateway_loop(server, config, "gw-1", "token", members, tally))


def test_every_reading_of_its_sensors_goes_once_in_batches_with_ids():
    server, tally = FakeServer(), Tally()
    run_gateway(server, tally)
    sent = [(r["sensor"], r["ts"]) for batch in server.batches for r in batch["readings"]]
    assert len(sent) == len(set(sent)) == tally.sent == 3 * 5  # 1 s of readings every 0.2 s
    assert all(len(batch["readings"]) >= 1 for batch in server.batches)
    assert len({batch["batch"] for batch in server.batches}) == len(server.batches)


def test_only_readings_of_answered_batches_that_were_not_rejected_are_acknowledged():
    server, tally = FakeServer(), Tally()
    run_gateway(server, tally)
    expected = [
        (r["sensor"], r["ts"])
        for number, batch in enumerate(server.batches, start=1)
        if number % 3
        for r in batch["readings"][1:]
    ]
    assert sorted(tally.acknowledged) == sorted(expected)
    assert tally.refused == len(server.batches) // 3


def test_a_gateway_behind_a_slow_server_sends_its_backlog_together():
    """Answers take 3.5 batch periods: the batches spooled meanwhile go in the next request, as
    the scanner agent's uploader sends them, instead of one request per batch period."""
    server, tally = FakeServer(answer_s=0.35), Tally()
    run_gateway(server, tally)
    sent = [(r["sensor"], r["ts"]) for batch in server.batches for r in batch["readings"]]
    assert len(sent) == len(set(sent)) == tally.sent == 3 * 5
    assert len(server.batches) <= 5
    assert max(len(batch["readings"]) for batch in server.batches) >= 3
