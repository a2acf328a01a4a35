"""A ward for the workflow tests: a patient room, a soiled and a clean utility room and an exit
side by side on one floor (all in the ICU), a scanner in each, and readings helpers that go
through the real bus and shard pipeline."""

from __future__ import annotations

import time

import pytest

from tests.factories import (
    AssetFactory,
    AssetTypeFactory,
    DepartmentFactory,
    FloorFactory,
    ScannerFactory,
    TagFactory,
    UserFactory,
    ZoneFactory,
)
from tracking import bus, pipeline
from tracking.ingestion import RssiReading
from workflows import config

ZONES = [
    ("Room 1", "room"),
    ("Soiled", "soiled-utility"),
    ("Clean", "clean-utility"),
    ("Exit", "exit"),
]


@pytest.fixture(autouse=True)
def _fresh_configuration():
    """The per-process rule cache must not carry rules of a rolled-back test into the next."""
    config.forget()
    yield
    config.forget()


@pytest.fixture
def ward(redis_bus, settings):
    settings.WARDWISE = {**settings.WARDWISE, "LATE_ALLOWANCE_S": 2.0, "HOLD_MAX_S": 5.0}
    icu = DepartmentFactory(name="ICU")
    floor = FloorFactory(width_m=40, height_m=6)
    zones, scanners = {}, {}
    for i, (name, kind) in enumerate(ZONES):
        x = 10 * i
        zones[kind] = ZoneFactory(
            floor=floor,
            name=name,
            kind=kind,
            department=icu,
            polygon=[[x, 0], [x + 10, 0], [x + 10, 6], [x, 6]],
        )
        scanners[kind] = ScannerFactory(serial=f"s-{kind}", floor=floor, x=x + 5, y=3).serial
    pumps = AssetTypeFactory(slug="infusion-pump", name="Infusion pump")
    return {"floor": floor, "zones": zones, "scanners": scanners, "icu": icu, "pumps": pumps}


class Radio:
    """Moves tagged assets between the ward's zones through the real pipeline."""

    def __init__(self, ward, start: float):
        self.ward = ward
        self.clock = start

    def tagged(self, name, status="available", **kwargs):
        asset = AssetFactory(name=name, asset_type=self.ward["pumps"], status=status, **kwargs)
        TagFactory(asset=asset)
        asset.refresh_from_db()
        return asset

    def place(self, asset, kind: str, seconds: float = 40.0) -> None:
        """The asset is heard strongly by the scanner of `kind`'s zone (and weakly by another)
        for `seconds`, then the shards are processed."""
        near = self.ward["scanners"][kind]
        far = next(s for k, s in self.ward["scanners"].items() if k != kind)
        tag = asset.tag.tag_id
        for i in range(int(seconds / 0.5)):
            ts = self.clock + i * 0.5
            bus.publish(near, [RssiReading(ts, tag, -55.0)], ts)
            bus.publish(far, [RssiReading(ts + 0.01, tag, -80.0)], ts)
        self.clock += seconds
        for shard in range(bus.shard_count()):
            pipeline.process_shard(shard, now=self.clock + 10)


@pytest.fixture
def radio(ward):
    return Radio(ward, start=time.time() - 3600)


@pytest.fixture
def biomed(db):
    return UserFactory(username="bio", roles=["biomed"])


@pytest.fixture
def nurse(db):
    return UserFactory(username="nurse1", roles=["nurse"])


@pytest.fixture
def facilities(db):
    return UserFactory(username="fac1", roles=["facilities"])
