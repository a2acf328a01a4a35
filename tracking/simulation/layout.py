"""Synthetic hospital floors as contract section-1 site documents.

Every floor is a double-loaded corridor: a row of rooms along the south wall, one along the north
wall, a corridor between them. A few rooms of each floor get special uses (nurse station, storage,
pharmacy, blood bank) because the demo and the cold-chain features need them. Zones are axis-aligned
rectangles that touch but never overlap and all lie inside the floor outline.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

SCANNER_POLICIES = ("per-room", "per-two-rooms")

ASSET_TYPES = (
    ("infusion-pump", "Pump", 0.35),
    ("wheelchair", "Wheelchair", 0.2),
    ("bed", "Bed", 0.15),
    ("ecg-monitor", "ECG monitor", 0.1),
    ("defibrillator", "Defibrillator", 0.08),
    ("ventilator", "Ventilator", 0.07),
    ("ultrasound", "Ultrasound", 0.05),
)

# Fixed so the demo site's tag ids stay stable between runs and releases.
DEMO_IBEACON_UUID = uuid.UUID("f7826da6-4fa2-4e98-8024-bc5b71e0893e")

SPECIAL_ROOMS = {
    # room index (south row counted from the west end, then north row) -> (kind, label)
    0: ("nurse-station", "Nurse station"),
    1: ("storage", "Equipment storage"),
    2: ("pharmacy", "Pharmacy"),
    3: ("lab", "Blood bank"),
    4: ("clean-utility", "Clean utility"),
}


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [
        [round(x0, 3), round(y0, 3)],
        [round(x1, 3), round(y0, 3)],
        [round(x1, 3), round(y1, 3)],
        [round(x0, 3), round(y1, 3)],
    ]


def room_name(level: int, index: int) -> str:
    return f"{level}{index + 1:02d}"


def _floor_zones(
    level: int, rooms_per_side: int, room_width: float, room_depth: float, corridor_width: float
) -> list[dict[str, Any]]:
    zones = []
    for row in range(2):
        y0 = 0.0 if row == 0 else room_depth + corridor_width
        for column in range(rooms_per_side):
            index = row * rooms_per_side + column
            # The north row is numbered from the east end, as in most hospitals, so that room
            # numbers run around the floor.
            x_column = column if row == 0 else rooms_per_side - 1 - column
            x0 = x_column * room_width
            kind, _label = SPECIAL_ROOMS.get(index, ("room", ""))
            zones.append(
                {
                    "name": room_name(level, index),
                    "kind": kind,
                    "polygon": _rect(x0, y0, x0 + room_width, y0 + room_depth),
                }
            )
    width = rooms_per_side * room_width
    zones.append(
        {
            "name": f"Corridor {level}",
            "kind": "corridor",
            "polygon": _rect(0.0, room_depth, width, room_depth + corridor_width),
        }
    )
    return zones


def _zone_centre(zone: dict[str, Any]) -> tuple[float, float]:
    xs = [point[0] for point in zone["polygon"]]
    ys = [point[1] for point in zone["polygon"]]
    return (sum(xs) / len(xs), sum(ys) / len(ys))


def _scanner(serial: str, x: float, y: float, z: float) -> dict[str, Any]:
    return {
        "serial": serial,
        "kind": "ble",
        "x": round(x, 3),
        "y": round(y, 3),
        "z": z,
        "rssi_at_1m": -59.0,
        "path_loss_exponent": 2.0,
    }


def _floor_scanners(
    level: int,
    zones: list[dict[str, Any]],
    policy: str,
    rooms_per_side: int,
    room_width: float,
    room_depth: float,
    corridor_width: float,
    mount_height: float,
) -> list[dict[str, Any]]:
    rooms = [zone for zone in zones if zone["kind"] != "corridor"]
    scanners = []
    if policy == "per-room":
        for zone in rooms:
            x, y = _zone_centre(zone)
            scanners.append(_scanner(f"s{level}-{zone['name']}", x, y, mount_height))
        return scanners
    if policy != "per-two-rooms":
        raise ValueError(f"unknown scanner policy {policy!r}; expected one of {SCANNER_POLICIES}")
    for zone in rooms:
        index = int(zone["name"][len(str(level)) :]) - 1
        row, column = divmod(index, rooms_per_side)
        # Staggered: even columns in the south row, odd ones in the north row (by x position),
        # so every stretch of corridor has a room scanner on one side or the other.
        x_column = column if row == 0 else rooms_per_side - 1 - column
        if x_column % 2 == row:
            x, y = _zone_centre(zone)
            scanners.append(_scanner(f"s{level}-{zone['name']}", x, y, mount_height))
    width = rooms_per_side * room_width
    spacing = 2 * room_width
    count = max(1, round(width / spacing))
    for k in range(count):
        x = (k + 0.5) * width / count
        scanners.append(
            _scanner(f"s{level}-c{k + 1}", x, room_depth + corridor_width / 2, mount_height)
        )
    return scanners


def _floor_sensors(level: int, zones: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_kind: dict[str, list[str]] = {}
    for zone in zones:
        by_kind.setdefault(zone["kind"], []).append(zone["name"])
    sensors = []
    if "pharmacy" in by_kind:
        pharmacy = by_kind["pharmacy"][0]
        sensors += [
            {
                "serial": f"fridge-pharm-{level}",
                "kind": "refrigerator",
                "zone": pharmacy,
                "profile": "vaccine-refrigerator",
            },
            {
                "serial": f"freezer-pharm-{level}",
                "kind": "freezer",
                "zone": pharmacy,
                "profile": "vaccine-freezer",
            },
        ]
    if "lab" in by_kind:
        sensors.append(
            {
                "serial": f"fridge-blood-{level}",
                "kind": "refrigerator",
                "zone": by_kind["lab"][0],
                "profile": "blood-bank-refrigerator",
            }
        )
    if "nurse-station" in by_kind:
        sensors.append(
            {
                "serial": f"fridge-ward-{level}",
                "kind": "refrigerator",
                "zone": by_kind["nurse-station"][0],
                "profile": "vaccine-refrigerator",
            }
        )
    return sensors


def ibeacon_tag(major: int, minor: int, base: uuid.UUID = DEMO_IBEACON_UUID) -> str:
    return f"ibeacon:{base}:{major}:{minor}"


def _assets(levels: list[int], per_floor: int, rng: random.Random) -> list[dict[str, Any]]:
    assets = []
    counters: dict[str, int] = {}
    weights = [weight for _slug, _label, weight in ASSET_TYPES]
    for level in levels:
        for minor in range(1, per_floor + 1):
            # Deterministic mix: the first asset types are guaranteed, then weighted draws.
            if minor <= len(ASSET_TYPES):
                slug, label, _weight = ASSET_TYPES[minor - 1]
            else:
                slug, label, _weight = rng.choices(ASSET_TYPES, weights=weights)[0]
            counters[slug] = counters.get(slug, 0) + 1
            assets.append(
                {
                    "name": f"{label} {level}-{counters[slug]}",
                    "type": slug,
                    "tag": ibeacon_tag(level, minor),
                }
            )
    return assets


def generate_hospital(
    *,
    name: str = "St. Example General",
    building: str = "Main",
    floors: int = 2,
    rooms_per_side: int = 10,
    room_width: float = 5.0,
    room_depth: float = 7.0,
    corridor_width: float = 3.0,
    scanner_policy: str = "per-room",
    mount_height: float = 2.6,
    assets_per_floor: int = 36,
    seed: int = 0,
) -> dict[str, Any]:
    """A contract section-1 site document for a `floors`-storey double-loaded-corridor ward.

    Floors are named "Level <n>" with level n = 1..floors; rooms "<n><nn>" (101, 102, ...); one
    corridor "Corridor <n>" per floor. `scanner_policy` is "per-room" (one scanner at the centre
    of every room) or "per-two-rooms" (every other room, staggered across the corridor, plus
    corridor scanners every two room widths). Deterministic for a given seed.
    """
    if floors < 1 or rooms_per_side < 3:
        raise ValueError("need at least one floor and three rooms per side")
    rng = random.Random(seed)
    width = rooms_per_side * room_width
    height = 2 * room_depth + corridor_width
    floor_documents = []
    for level in range(1, floors + 1):
        zones = _floor_zones(level, rooms_per_side, room_width, room_depth, corridor_width)
        scanners = _floor_scanners(
            level,
            zones,
            scanner_policy,
            rooms_per_side,
            room_width,
            room_depth,
            corridor_width,
            mount_height,
        )
        floor_documents.append(
            {
                "name": f"Level {level}",
                "level": level,
                "width_m": width,
                "height_m": height,
                "zones": zones,
                "scanners": scanners,
                "sensors": _floor_sensors(level, zones),
            }
        )
    return {
        "name": name,
        "buildings": [{"name": building, "floors": floor_documents}],
        "assets": _assets(list(range(1, floors + 1)), assets_per_floor, rng),
    }


def main(argv: list[str] | None = None) -> None:
    """`python -m tracking.simulation.layout [options] > site.json` writes a site document."""
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--floors", type=int, default=2)
    parser.add_argument("--rooms-per-side", type=int, default=10)
    parser.add_argument("--scanner-policy", choices=SCANNER_POLICIES, default="per-room")
    parser.add_argument("--assets-per-floor", type=int, default=36)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    document = generate_hospital(
        floors=args.floors,
        rooms_per_side=args.rooms_per_side,
        scanner_policy=args.scanner_policy,
        assets_per_floor=args.assets_per_floor,
        seed=args.seed,
    )
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
