import math

import pytest

from hospital.geometry import FloorGeometry, ZoneShape
from tracking.localization import FloorSpec, Reading, ScannerSpec, SiteSpec


def rect(x0, y0, x1, y1):
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


@pytest.fixture
def two_rooms():
    """Rooms A (0..5) and B (5..10) side by side, 5 m deep, one scanner in the middle of each."""
    geometry = FloorGeometry(
        10.0,
        5.0,
        [ZoneShape("A", "room", rect(0, 0, 5, 5)), ZoneShape("B", "room", rect(5, 0, 10, 5))],
    )
    scanners = (ScannerSpec("sa", "L1", 2.5, 2.5), ScannerSpec("sb", "L1", 7.5, 2.5))
    return SiteSpec((FloorSpec("L1", 1, geometry),), scanners)


@pytest.fixture
def two_floors():
    """Two identical 20 x 10 m floors with four scanners each, zoned as one open room."""
    floors, scanners = [], []
    for level in (1, 2):
        name = f"L{level}"
        floors.append(
            FloorSpec(
                name,
                level,
                FloorGeometry(20, 10, [ZoneShape(f"open{level}", "room", rect(0, 0, 20, 10))]),
            )
        )
        for i, (x, y) in enumerate([(2, 2), (18, 2), (2, 8), (18, 8)]):
            scanners.append(ScannerSpec(f"s{level}{i}", name, x, y))
    return SiteSpec(tuple(floors), tuple(scanners))


def model_rssi(scanner, x, y, walls=0, floors=0, tag_z=1.0):
    d2 = (scanner.x - x) ** 2 + (scanner.y - y) ** 2 + (scanner.z - tag_z) ** 2
    return (
        scanner.rssi_at_1m
        - 10 * scanner.path_loss_exponent * math.log10(d2) / 2
        - 4 * walls
        - 18 * floors
    )


def readings_for(site, tag, x, y, floor, seconds, start=1000.0, noise=None, step=0.5):
    """Readings from every scanner of `floor` (others 18 dB down per storey) every `step` s."""
    levels = {f.name: f.level for f in site.floors}
    out = []
    n = int(seconds / step)
    for k in range(n):
        ts = start + k * step
        for i, scanner in enumerate(site.scanners):
            storeys = abs(levels[scanner.floor] - levels[floor])
            rssi = model_rssi(scanner, x, y, floors=storeys)
            if noise is not None:
                rssi += noise(k, i)
            out.append(Reading(round(ts + i * 0.001, 3), scanner.serial, tag, round(rssi)))
    return out
