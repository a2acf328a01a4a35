"""Command line: `python -m scanners run|scan-once|status|check-config|decode`."""

import argparse
import asyncio
import dataclasses
import json
import logging
import sys
import time

from scanners import __version__
from scanners.ble_frames import FrameStats, decode_frames, parse_ad_structures
from scanners.config import ConfigError, load_config

log = logging.getLogger("scanners")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _load(args):
    try:
        return load_config(args.config)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_run(args) -> int:
    config = _load(args)
    _setup_logging(config.log_level)
    from scanners.agent import Agent

    asyncio.run(Agent(config).run())
    return 0


def cmd_scan_once(args) -> int:
    """Scan for a while and print what *would* be uploaded; filtered devices are only counted."""
    config = _load(args)
    _setup_logging(config.log_level)
    from scanners.ble import BleSource
    from scanners.edge import AdvertisementProcessor

    processor = AdvertisementProcessor(
        config.tag_filter(), config.sensors.serials, environment_interval_s=0
    )

    def on_advertisement(address, rssi, manufacturer_data, service_data) -> None:
        rssi_readings, environment = processor.handle(
            address, rssi, manufacturer_data, service_data
        )
        for reading in rssi_readings:
            print(json.dumps({"rssi": reading.to_json()}), flush=True)
        for reading in environment:
            print(json.dumps({"environment": reading.to_json()}), flush=True)

    async def scan() -> None:
        source = BleSource(config.ble, config.tag_filter(), on_advertisement)
        task = asyncio.create_task(source.run())
        await asyncio.sleep(args.seconds)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scan())
    stats = processor.stats
    summary = {
        "advertisements": stats.advertisements,
        "filtered_out": stats.filtered_out,
        "decoded": dict(stats.frames.decoded),
        "malformed": dict(stats.frames.malformed),
    }
    print(json.dumps({"summary": summary}))
    return 0


def cmd_status(args) -> int:
    config = _load(args)
    from scanners.spool import Spool

    spool = Spool(config.spool.path, config.spool.max_bytes)
    depth = spool.depth()
    oldest = spool.peek(1)
    report = {
        "agent_version": __version__,
        "spool_path": str(spool.path),
        "spool": dataclasses.asdict(depth),
        "oldest_batch_age_s": round(time.time() - oldest[0].created, 1) if oldest else None,
        "counters": spool.counters(),
    }
    spool.close()
    print(json.dumps(report, indent=2))
    return 0


def cmd_check_config(args) -> int:
    config = _load(args)
    shown = dataclasses.asdict(config)
    if shown["server"]["token"]:
        shown["server"]["token"] = "***"  # noqa: S105  (redaction marker)  # nosec B105
    print(json.dumps(shown, indent=2))
    return 0


def cmd_decode(args) -> int:
    """Decode one raw advertising payload given in hex, for checking a beacon's configuration."""
    stats = FrameStats()
    try:
        raw = bytes.fromhex(args.hex.replace(" ", "").replace(":", ""))
    except ValueError:
        print("not a hex string", file=sys.stderr)
        return 2
    manufacturer_data, service_data = parse_ad_structures(raw, stats)
    frames = decode_frames(manufacturer_data, service_data, stats)
    for frame in frames:
        print(json.dumps(dataclasses.asdict(frame)))
    if stats.malformed:
        print(json.dumps({"malformed": dict(stats.malformed)}))
    return 0 if frames else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scanners", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, handler, helptext in (
        ("run", cmd_run, "run the agent (what the systemd unit starts)"),
        ("scan-once", cmd_scan_once, "scan BLE briefly and print what would be uploaded"),
        ("status", cmd_status, "print spool depth and counters"),
        ("check-config", cmd_check_config, "validate the configuration and print it"),
    ):
        command = commands.add_parser(name, help=helptext)
        command.add_argument("--config", help="TOML configuration file", default=None)
        command.set_defaults(handler=handler)
        if name == "scan-once":
            command.add_argument("--seconds", type=float, default=10.0)
    decode = commands.add_parser("decode", help="decode a raw advertisement given in hex")
    decode.add_argument("hex")
    decode.set_defaults(handler=cmd_decode)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
