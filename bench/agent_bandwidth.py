"""Upload volume of one gateway with and without per-tag aggregation.

Simulates tags advertising at a fixed rate near one gateway for a while, runs the agent's own
Aggregator, Batcher and JSON serialisation, and counts the bytes of the request bodies plus a
fixed per-request HTTP overhead. Deterministic (seeded), so the figure in docs is reproducible:

    python -m bench.agent_bandwidth
    python -m bench.agent_bandwidth --tags 200 --rate-hz 4 --aggregate-ms 5000
"""

import argparse
import json
import random
import uuid

from scanners.edge import Aggregator, Batcher
from scanners.readings import RssiReading

# Request line, Host, Authorization: Token <40 hex>, Content-Type, Content-Length, User-Agent,
# plus the response status line and headers: measured on a Django + DRF 202, rounded up.
HTTP_OVERHEAD_BYTES = 450


def simulate(tags: int, rate_hz: float, seconds: float, aggregate_ms: int | None, seed: int):
    rng = random.Random(seed)
    clock = [0.0]
    batcher = Batcher(interval_s=1.0, max_readings=500, clock=lambda: clock[0])
    aggregator = Aggregator(aggregate_ms / 1000) if aggregate_ms else None
    tag_ids = [f"ibeacon:{uuid.UUID(int=rng.getrandbits(128))}:1:{i}" for i in range(tags)]
    base_rssi = [rng.uniform(-90, -55) for _ in tag_ids]
    phases = [rng.uniform(0, 1 / rate_hz) for _ in tag_ids]
    events = sorted(
        (phase + k / rate_hz, index)
        for index, phase in enumerate(phases)
        for k in range(int(seconds * rate_hz))
    )
    batches: list[list[RssiReading]] = []
    start = 1_795_939_200.0

    def push(reading: RssiReading) -> None:
        full = batcher.add(reading)
        if full:
            batches.append(full)

    for offset, index in events:
        clock[0] = offset
        due = batcher.due()
        if due:
            batches.append(due)
        reading = RssiReading(
            tag_ids[index], round(base_rssi[index] + rng.gauss(0, 4)), start + offset
        )
        if aggregator is None:
            push(reading)
        else:
            for aggregate in aggregator.add(reading):
                push(aggregate)
    if aggregator is not None:
        for aggregate in aggregator.flush():
            push(aggregate)
    rest = batcher.take()
    if rest:
        batches.append(rest)

    body_bytes = sum(
        len(json.dumps({"batch": uuid.UUID(int=i).hex, "readings": [r.to_json() for r in b]}))
        for i, b in enumerate(batches)
    )
    return {
        "readings_sensed": len(events),
        "readings_uploaded": sum(len(b) for b in batches),
        "requests": len(batches),
        "bytes": body_bytes + HTTP_OVERHEAD_BYTES * len(batches),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=100)
    parser.add_argument("--rate-hz", type=float, default=2.0, help="advertisements per tag per s")
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--aggregate-ms", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    raw = simulate(args.tags, args.rate_hz, args.seconds, None, args.seed)
    aggregated = simulate(args.tags, args.rate_hz, args.seconds, args.aggregate_ms, args.seed)
    hours = args.seconds / 3600
    print(
        f"{args.tags} tags at {args.rate_hz:g} Hz for {args.seconds:g} s, "
        f"batches of <=1 s/<=500 readings, aggregation {args.aggregate_ms} ms median"
    )
    print(f"{'':14}{'readings':>10}{'requests':>10}{'bytes':>12}{'MB/day':>9}")
    for name, result in (("raw", raw), ("aggregated", aggregated)):
        per_day = result["bytes"] / hours * 24 / 1e6
        print(
            f"{name:14}{result['readings_uploaded']:>10}{result['requests']:>10}"
            f"{result['bytes']:>12}{per_day:>9.1f}"
        )
    saved = 1 - aggregated["bytes"] / raw["bytes"]
    print(f"bandwidth saved by aggregation: {saved:.1%}")


if __name__ == "__main__":
    main()
