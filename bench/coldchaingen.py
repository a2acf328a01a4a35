"""Load processes for bench.coldchain: simulated fridge probes and the facilities alert console.

Each runs as its own OS process (`python -m bench.coldchaingen sensors|console CONFIG OUT`) so
its CPU is apart from the stack's. No Django here: the probes speak HTTP and the console speaks
the websocket like the real ones.

Probes: every sensor posts one reading every `interval_s` at its own phase, with its own device
token, one request at a time on a keep-alive connection (a Wi-Fi probe waits for the answer; it
gives up after `request_timeout_s`, waiting for a free connection included, and does not resend).
In-range values hover around 5.5 °C. A share of the sensors has an excursion every
`excursion_every_s`: `excursion_readings` readings at about 9 °C (above the 8 °C warning limit, a
step small enough not to look like a sensor fault), so the reading `alarm_delay_s` after the first
bad one completes the alarm condition when every reading reaches the server. The probes of those
sensors record every attempt (reading time, sent, answered, outcome, step in the excursion), from
which bench.coldchain tells which excursions could alert at all. The console records every alert
event with its receive time, the alerts of each snapshot, and when it was connected.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import sys
import time

REQUEST_TIMEOUT_S = 10.0
IN_RANGE_C = 5.5
OUT_OF_RANGE_C = 9.0


def excursion_plan(index: int, config: dict) -> float | None:
    """Offset within each excursion period at which this sensor's excursions begin, or None
    for a sensor that stays in range. Periods are whole intervals, so every sensor's readings
    fall on the same steps of its excursions."""
    if index % config["excursion_one_in"] != 0:
        return None
    steps = int(config["excursion_every_s"] // config["interval_s"])
    return random.Random(index).randrange(steps) * config["interval_s"] + config["interval_s"] / 2


def reading_value(ts: float, start: float, offset: float | None, config: dict, rng) -> tuple:
    """(temperature, step) of a reading at `ts`: step is the reading's index within its
    excursion (0 for the first bad reading), None for an in-range reading."""
    noise = rng.gauss(0.0, 0.2)
    if offset is None:
        return round(IN_RANGE_C + noise, 1), None
    period = config["excursion_every_s"]
    interval = config["interval_s"]
    since = (ts - start - offset) % period
    first = ts - start - offset >= 0
    bad_for = config["excursion_readings"] * interval
    if first and since < bad_for - 1e-6:
        return round(OUT_OF_RANGE_C + abs(noise) / 2, 1), int(since // interval)
    return round(IN_RANGE_C + noise, 1), None


def completes(step: int | None, config: dict) -> bool:
    """Whether the bad reading at `step` is the one that completes the alarm condition (the
    first `alarm_delay_s` after the excursion's first reading), given every reading arrives."""
    return step is not None and math.isclose(step * config["interval_s"], config["alarm_delay_s"])


class Tally:
    def __init__(self) -> None:
        self.sent = 0
        self.accepted = 0
        self.duplicates = 0
        self.rejected = 0
        self.refused = 0
        self.errors = 0
        self.statuses: dict[str, int] = {}
        self.request_ms: list[float] = []
        self.acknowledged: list[tuple[str, float]] = []
        #: serial -> [ts, sent_at, answered_at or None, outcome, step], excursion sensors only
        self.attempts: dict[str, list[list]] = {}
        self.per_second: dict[int, int] = {}
        self.start = 0.0


def _phase(index: int, config: dict) -> float:
    interval = config["interval_s"]
    return (index * interval / config["sensor_count"]) % interval


def _reading(serial: str, scheduled: float, temperature: float) -> dict:
    return {
        "sensor": serial,
        "ts": round(scheduled, 3),
        "temperature_c": temperature,
        "battery_pct": 90,
        "door_open": False,
    }


async def _post(session, url: str, body: bytes, headers: dict, tally: Tally, attempts: list):
    """One request; records its outcome on every attempt it carried ([serial, attempt] pairs),
    and the readings it got acknowledged (2xx, not rejected)."""
    sent_at = time.time()
    for _, attempt in attempts:
        attempt[1] = sent_at
    try:
        async with session.post(url, data=body, headers=headers) as response:
            payload = await response.read()
            status = response.status
    except Exception as exc:  # any client failure is a failed request: count it
        tally.errors += 1
        name = f"error_{type(exc).__name__}"
        tally.statuses[name] = tally.statuses.get(name, 0) + 1
        for _, attempt in attempts:
            attempt[3] = name
        return
    answered_at = time.time()
    for _, attempt in attempts:
        attempt[2:4] = [answered_at, str(status)]
    tally.request_ms.append((answered_at - sent_at) * 1000)
    tally.statuses[str(status)] = tally.statuses.get(str(status), 0) + 1
    if not 200 <= status < 300:
        tally.refused += 1
        return
    result = json.loads(payload)
    tally.accepted += result["accepted"]
    tally.duplicates += result["duplicates"]
    tally.rejected += len(result["rejected"])
    rejected = {entry["index"] for entry in result["rejected"]}
    for index, (serial, attempt) in enumerate(attempts):
        if index not in rejected:
            tally.acknowledged.append((serial, attempt[0]))
    second = int(answered_at - tally.start)
    tally.per_second[second] = tally.per_second.get(second, 0) + result["accepted"]


async def sensor_loop(session, config, index, serial, token, tally: Tally) -> None:
    rng = random.Random(f"{config['seed']}:{serial}")
    interval = config["interval_s"]
    start = config["start_at"]
    end = start + config["duration_s"]
    phase = _phase(index, config)
    offset = excursion_plan(index, config)
    url = config["base_url"] + "/api/v1/readings/environment/"
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    # Readings stand on a grid from the start (phase + k * interval): the excursion arithmetic
    # needs exact steps, and a probe that fell behind still stamps its scheduled time.
    step = 0
    while True:
        scheduled = start + phase + step * interval
        step += 1
        if scheduled >= end:
            return
        delay = scheduled - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        temperature, excursion_step = reading_value(scheduled, start + phase, offset, config, rng)
        body = json.dumps({"readings": [_reading(serial, scheduled, temperature)]}).encode()
        tally.sent += 1
        attempt = [round(scheduled, 3), None, None, "", excursion_step]
        if offset is not None:
            tally.attempts.setdefault(serial, []).append(attempt)
        await _post(session, url, body, headers, tally, [(serial, attempt)])


async def gateway_loop(session, config, gateway, token, members, tally: Tally) -> None:
    """A scanner agent relaying its sensors (`--relay`): every `batch_s` at its own phase, the
    readings its sensors took since its last batch go in one request with a batch id, as the
    agent's batcher sends them. A gateway that fell behind (its last answer took longer than
    `batch_s`) sends the batches it spooled meanwhile in one request, as the agent's uploader
    does (its limit of 2,000 readings is far above what 25 sensors take in a few seconds).
    `members`: (index, serial) of its sensors."""
    interval, batch_s = config["interval_s"], config["batch_s"]
    start = config["start_at"]
    end = start + config["duration_s"]
    url = config["base_url"] + "/api/v1/readings/environment/"
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    sensors = [
        (
            serial,
            start + _phase(index, config),
            excursion_plan(index, config),
            random.Random(f"{config['seed']}:{serial}"),
        )
        for index, serial in members
    ]
    steps = [0] * len(sensors)
    tick_phase = random.Random(f"{config['seed']}:{gateway}").uniform(0.0, batch_s)
    tick = 0
    while True:
        due = start + tick_phase + tick * batch_s
        tick += 1
        if due >= end + batch_s:
            return
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        while (following := start + tick_phase + tick * batch_s) <= time.time():
            if following >= end + batch_s:
                break
            due = following
            tick += 1
        readings, attempts = [], []
        for position, (serial, first, offset, rng) in enumerate(sensors):
            while True:
                scheduled = first + steps[position] * interval
                if scheduled > due or scheduled >= end:
                    break
                steps[position] += 1
                temperature, excursion_step = reading_value(scheduled, first, offset, config, rng)
                readings.append(_reading(serial, scheduled, temperature))
                attempt = [round(scheduled, 3), None, None, "", excursion_step]
                if offset is not None:
                    tally.attempts.setdefault(serial, []).append(attempt)
                attempts.append((serial, attempt))
        if not readings:
            continue
        tally.sent += len(readings)
        body = json.dumps({"batch": f"{gateway}-{tick}", "readings": readings}).encode()
        await _post(session, url, body, headers, tally, attempts)


async def run_sensors(config: dict) -> dict:
    import aiohttp

    tally = Tally()
    tally.start = config["start_at"]
    timeout = aiohttp.ClientTimeout(total=config.get("request_timeout_s", REQUEST_TIMEOUT_S))
    connector = aiohttp.TCPConnector(limit=config.get("connections", 400), keepalive_timeout=60)
    gateways = config.get("gateways")
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        if gateways:  # relayed: the second of each pair names the sensor's gateway
            members: dict[str, list] = {}
            for index, (serial, gateway) in enumerate(config["sensors"]):
                members.setdefault(gateway, []).append((index, serial))
            loops = [
                gateway_loop(session, config, gateway, gateways[gateway], sensors, tally)
                for gateway, sensors in sorted(members.items())
            ]
        else:
            loops = [
                sensor_loop(session, config, index, serial, token, tally)
                for index, (serial, token) in enumerate(config["sensors"])
            ]
        await asyncio.gather(*loops)
    return {
        "sent": tally.sent,
        "accepted": tally.accepted,
        "duplicates": tally.duplicates,
        "rejected": tally.rejected,
        "refused": tally.refused,
        "errors": tally.errors,
        "statuses": tally.statuses,
        "request_ms": sorted(tally.request_ms),
        "acknowledged": tally.acknowledged,
        "attempts": tally.attempts,
        "accepted_per_second": {str(k): v for k, v in sorted(tally.per_second.items())},
    }


async def run_console(config: dict) -> dict:
    """A facilities user's alert console: the snapshot, then every change with its receive time.
    Like the real console it reconnects when the connection drops (counted); alerts opened while
    it was away only come back in the next snapshot (recorded apart: their `opened` event never
    arrives, so bench.coldchain counts them as missing, opened while disconnected)."""
    import websockets

    events: list[dict] = []
    stats = {
        "snapshot_alerts": 0,
        "reconnects": 0,
        "errors": [],
        "connected": [],
        "snapshots": [],
    }
    end = config["start_at"] + config["duration_s"] + config["drain_s"]
    headers = {"Cookie": f"sessionid={config['sessionid']}"}
    while time.time() < end:
        try:
            async with websockets.connect(
                config["ws_url"], origin=config["origin"], additional_headers=headers, max_size=None
            ) as socket:
                period = [time.time(), None]
                stats["connected"].append(period)
                try:
                    await _listen(socket, end, events, stats)
                finally:
                    period[1] = time.time()
        except (OSError, websockets.exceptions.WebSocketException) as exc:
            stats["reconnects"] += 1
            stats["errors"].append(f"{time.time():.1f} {exc!r}")
            await asyncio.sleep(0.5)
    return {"events": events, "stats": stats}


async def _listen(socket, end: float, events: list, stats: dict) -> None:
    while time.time() < end:
        try:
            raw = await asyncio.wait_for(socket.recv(), timeout=max(0.1, end - time.time()))
        except TimeoutError:
            return
        received = time.time()
        message = json.loads(raw)
        if message.get("type") == "snapshot":
            stats["snapshot_alerts"] += len(message["alerts"])
            stats["snapshots"].append([received, [alert["id"] for alert in message["alerts"]]])
            continue
        alert = message.get("alert", {})
        events.append(
            {
                "received": received,
                "event": message.get("event"),
                "id": alert.get("id"),
                "sensor": alert.get("sensor"),
                "kind": alert.get("kind"),
                "started_at": alert.get("started_at"),
                "opened_at": alert.get("opened_at"),
            }
        )


def main(argv: list[str]) -> None:
    """`python -m bench.coldchaingen sensors|console CONFIG.json OUT.json`."""
    mode, config_path, out_path = argv
    with open(config_path) as handle:
        config = json.load(handle)
    if mode == "sensors":
        result = asyncio.run(run_sensors(config))
    elif mode == "console":
        result = asyncio.run(run_console(config))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    with open(out_path, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main(sys.argv[1:])
