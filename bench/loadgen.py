"""Load generator processes for bench.load: simulated scanner gateways and websocket watchers.

Each runs as its own OS process (`python -m bench.loadgen scanners|watch CONFIG OUT`) so that its
CPU is measured apart from the stack's and its event loop never delays the other's clocks. No
Django here: the generator speaks HTTP to 127.0.0.1 like a fleet of gateways would.

Radio model (cheap on purpose, the engine is not what is measured here): every tag sits at a fixed
point in a room of its floor and is heard by its `k` nearest scanners of that floor, with a mean
RSSI from the log-distance model `-59 - 20 log10(d) - 4.5 dB per wall-ish room crossed` plus a
fixed per-link offset (shadowing, sigma 3 dB), and per reading Gaussian noise (sigma 4 dB),
rounded to integer dBm as gateways report it. Each link is heard in a given second with the
probability that makes the total the target rate, so batches vary in size as real ones do.
Readings are stamped with the batch's send time (posted as heard, like ESPresense), or with
`heard_spread_s` at a random moment of that many seconds before it (a gateway that batches).
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from datetime import UTC, datetime

import numpy as np

RSSI_AT_1M = -59.0
WALL_LOSS_DB = 4.5
SHADOWING_SIGMA_DB = 3.0
NOISE_SIGMA_DB = 4.0
TAG_HEIGHT_M = 1.0
#: A tick later than this is skipped (a gateway that fell this far behind would spool; counted).
MAX_TICK_LAG_S = 2.0
REQUEST_TIMEOUT_S = 10.0


def iso_ms(epoch: float) -> str:
    """The scanner agent's timestamp form (ISO 8601 UTC, milliseconds)."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def radio_links(document: dict, tags: list[tuple[str, int]], k: int, seed: int) -> dict:
    """Per scanner serial: (tag ids, mean RSSI) of the tags it hears. `tags` is (tag_id, level)."""
    rng = np.random.default_rng(seed)
    floors = {floor["level"]: floor for b in document["buildings"] for floor in b["floors"]}
    links: dict[str, tuple[list[str], list[float]]] = {}
    by_level: dict[int, list[str]] = {}
    for tag, level in tags:
        by_level.setdefault(level, []).append(tag)
    for level, tag_ids in by_level.items():
        floor = floors[level]
        rooms = [z for z in floor["zones"] if z["kind"] != "corridor"]
        scanners = floor["scanners"]
        sxy = np.array([[s["x"], s["y"]] for s in scanners])
        sz = np.array([s.get("z", 2.6) for s in scanners])
        room_w = rooms[0]["polygon"][1][0] - rooms[0]["polygon"][0][0]
        for serial in (s["serial"] for s in scanners):
            links.setdefault(serial, ([], []))
        choice = rng.integers(0, len(rooms), size=len(tag_ids))
        for tag, room_index in zip(tag_ids, choice, strict=True):
            (x0, y0), _, (x1, y1), _ = rooms[room_index]["polygon"]
            x = rng.uniform(x0 + 0.5, x1 - 0.5)
            y = rng.uniform(y0 + 0.5, y1 - 0.5)
            planar = np.hypot(sxy[:, 0] - x, sxy[:, 1] - y)
            distance = np.sqrt(planar**2 + (sz - TAG_HEIGHT_M) ** 2)
            nearest = np.argsort(distance)[:k]
            for index in nearest:
                walls = math.floor(planar[index] / room_w + 0.5)
                mean = (
                    RSSI_AT_1M
                    - 20.0 * math.log10(max(distance[index], 0.5))
                    - WALL_LOSS_DB * walls
                    + rng.normal(0.0, SHADOWING_SIGMA_DB)
                )
                serial = scanners[index]["serial"]
                links[serial][0].append(tag)
                links[serial][1].append(round(mean, 2))
    return links


class Tally:
    """Per-second counts of what the gateways sent and what the server answered."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.seconds: dict[int, dict[str, float]] = {}
        self.request_ms: list[float] = []

    def add(self, at: float, **counts: float) -> None:
        bucket = self.seconds.setdefault(int(at - self.start), {})
        for name, value in counts.items():
            bucket[name] = bucket.get(name, 0) + value


def retry_after_s(value: str | None) -> float | None:
    """Delta-seconds of a Retry-After header (the form Wardwise sends), None otherwise."""
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def batch_body(batch_id: str, tags, rssi, now: float, spread: float, rng) -> str:
    """A batch as the agent posts it. Readings are stamped `now` (posted as heard), or with
    `spread` at a random moment of the `spread` seconds before `now`, in epoch seconds."""
    if spread > 0:
        stamps = [f"{ts:.3f}" for ts in now - rng.uniform(0.0, spread, len(rssi))]
    else:
        stamps = [f'"{iso_ms(now)}"'] * len(rssi)
    readings = ",".join(
        f'{{"tag":"{tag}","rssi":{int(value)},"ts":{stamp}}}'
        for tag, value, stamp in zip(tags, rssi, stamps, strict=True)
    )
    return f'{{"batch":"{batch_id}","readings":[{readings}]}}'


async def scanner_loop(session, config, serial, token, tag_ids, means, phase, tally, seed):
    """One gateway: a batch every second at its own phase, sent on its own keep-alive
    connection, one request at a time (a real agent waits for the answer, then sends the next)."""
    rng = np.random.default_rng(seed)
    tags = np.array(tag_ids, dtype=object)
    means = np.array(means, dtype=float)
    probability = config["link_probability"]
    spread = config.get("heard_spread_s", 0.0)
    url = config["base_url"] + "/api/v1/readings/rssi/"
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    tick = config["start_at"] + phase
    end = config["start_at"] + config["duration_s"]
    sequence = 0
    resume_at = 0.0  # a 429 / 503 asked this gateway to wait until then (Retry-After)
    while tick < end:
        delay = tick - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif -delay > MAX_TICK_LAG_S:
            tally.add(tick, ticks_skipped=1)
            tick += 1.0
            continue
        now = time.time()
        tick += 1.0
        heard = rng.random(len(tags)) < probability
        if not heard.any():
            continue
        rssi = np.clip(np.rint(means[heard] + rng.normal(0, NOISE_SIGMA_DB, heard.sum())), -125, 0)
        if now < resume_at:
            # as the agent does (scanners/uploader.py): it keeps the batch and sends nothing
            # before Retry-After; the benchmark counts it deferred and does not resend it
            tally.add(now, offered=len(rssi), deferred=len(rssi))
            continue
        sequence += 1
        body = batch_body(
            f"{serial}-{config['run_id']}-{sequence}", tags[heard], rssi, now, spread, rng
        )
        sent = len(rssi)
        try:
            async with session.post(url, data=body.encode(), headers=headers) as response:
                payload = await response.read()
                status = response.status
                retry_after = retry_after_s(response.headers.get("Retry-After"))
        except (TimeoutError, OSError) as exc:
            tally.add(now, offered=sent, errors=1, **{f"error_{type(exc).__name__}": 1})
            continue
        except Exception as exc:  # any client failure is a failed request: count it
            tally.add(now, offered=sent, errors=1, **{f"error_{type(exc).__name__}": 1})
            continue
        elapsed = time.time() - now
        tally.request_ms.append(elapsed * 1000)
        if status == 202:
            result = json.loads(payload)
            tally.add(
                now,
                offered=sent,
                requests=1,
                accepted=result["accepted"] + result["duplicates"],
                rejected=len(result["rejected"]),
            )
        else:
            tally.add(now, offered=sent, requests=1, **{f"status_{status}": 1, "refused": sent})
            if status in (429, 503) and retry_after is not None:
                resume_at = now + retry_after


async def run_scanners(config: dict) -> dict:
    import aiohttp

    start = config["start_at"]
    tally = Tally(start)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60, force_close=False)
    phases = np.random.default_rng(config["seed"]).random(len(config["scanners"]))
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        loops = [
            scanner_loop(
                session,
                config,
                serial,
                token,
                config["links"][serial][0],
                config["links"][serial][1],
                float(phase),
                tally,
                config["seed"] * 100_003 + index,
            )
            for index, ((serial, token), phase) in enumerate(
                zip(config["scanners"], phases, strict=True)
            )
        ]
        await asyncio.gather(*loops)
    latencies = sorted(tally.request_ms)
    return {
        "seconds": {str(k): v for k, v in sorted(tally.seconds.items())},
        "request_ms": percentiles(latencies),
    }


def percentiles(values: list[float]) -> dict:
    """p50/p95/p99/max of already sorted values (nearest rank)."""
    if not values:
        return {"count": 0}

    def rank(q: float) -> float:
        return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]

    return {
        "count": len(values),
        "p50": rank(0.50),
        "p95": rank(0.95),
        "p99": rank(0.99),
        "max": values[-1],
    }


async def watch_floor(config: dict, floor_id: int, samples: list, stats: dict) -> None:
    """One nurse's floor map: snapshot, then updates; latency = receive time - update `ts`."""
    import websockets

    url = config["ws_url"].format(floor_id=floor_id)
    headers = {"Cookie": f"sessionid={config['sessionid']}"}
    end = config["start_at"] + config["duration_s"] + config["drain_s"]
    async with websockets.connect(
        url, origin=config["origin"], additional_headers=headers, max_size=None
    ) as socket:
        while time.time() < end:
            try:
                raw = await asyncio.wait_for(socket.recv(), timeout=max(0.1, end - time.time()))
            except TimeoutError:
                break
            received = time.time()
            message = json.loads(raw)
            if message.get("type") == "snapshot":
                stats["snapshot_assets"] = stats.get("snapshot_assets", 0) + len(message["assets"])
                continue
            if message.get("type") != "updates":
                continue
            stats["messages"] = stats.get("messages", 0) + 1
            for asset in message["assets"]:
                stamp = asset.get("ts")
                if not stamp:
                    continue
                event = datetime.fromisoformat(stamp).timestamp()
                samples.append((received, received - event))


async def run_watchers(config: dict) -> dict:
    samples: list[tuple[float, float]] = []
    stats: dict = {}
    results = await asyncio.gather(
        *(watch_floor(config, floor, samples, stats) for floor in config["floors"]),
        return_exceptions=True,
    )
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    return {"samples": samples, "stats": stats, "errors": errors}


def main(argv: list[str]) -> None:
    """`python -m bench.loadgen scanners|watch CONFIG.json OUT.json`."""
    mode, config_path, out_path = argv
    with open(config_path) as handle:
        config = json.load(handle)
    if mode == "scanners":
        result = asyncio.run(run_scanners(config))
    elif mode == "watch":
        result = asyncio.run(run_watchers(config))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    with open(out_path, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main(sys.argv[1:])
