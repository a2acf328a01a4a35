"""Helpers shared by the read-side tests (REST API and websockets): people with roles and a
small located fleet on one floor."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.auth.models import Group, User
from django.utils import timezone

from hospital.models import Department, Floor, Zone
from tests.factories import (
    AssetFactory,
    AssetLocationFactory,
    AssetTypeFactory,
    DepartmentFactory,
    FloorFactory,
    TagFactory,
    ZoneFactory,
)
from tracking.models import Asset

PASSWORD = "read-side-test-2026"


def person(username: str, *roles: str, superuser: bool = False) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_superuser=superuser)
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@dataclass
class Ward:
    floor: Floor
    other_floor: Floor
    rooms: list[Zone]
    icu: Department
    surgery: Department
    assets: dict[str, Asset] = field(default_factory=dict)


def ward() -> Ward:
    """Floor 'ward' with two rooms; a pump in each room, a wheelchair in room 1 that is missing,
    a pump in maintenance on another floor and a bed never located."""
    floor = FloorFactory(name="Ward 3")
    other = FloorFactory(name="Ward 4")
    icu = DepartmentFactory(name="ICU", code="icu")
    surgery = DepartmentFactory(name="Surgery", code="surgery")
    room1 = ZoneFactory(floor=floor, name="Room 301", department=icu)
    room2 = ZoneFactory(
        floor=floor, name="Room 302", polygon=[[5, 0], [10, 0], [10, 5], [5, 5]], department=icu
    )
    pump = AssetTypeFactory(slug="infusion-pump", name="Infusion pump")
    chair = AssetTypeFactory(slug="wheelchair", name="Wheelchair")
    bed = AssetTypeFactory(slug="bed", name="Bed")
    now = timezone.now()
    w = Ward(floor=floor, other_floor=other, rooms=[room1, room2], icu=icu, surgery=surgery)

    def make(name, asset_type, **kwargs):
        location = kwargs.pop("location", None)
        battery = kwargs.pop("battery", None)
        asset = AssetFactory(name=name, asset_type=asset_type, **kwargs)
        TagFactory(asset=asset, battery_pct=battery)
        if location is not None:
            AssetLocationFactory(asset=asset, **location)
        w.assets[name] = asset
        return asset

    make(
        "Pump A",
        pump,
        department=icu,
        serial_number="SN-1001",
        model="Alaris 8100",
        battery=87.0,
        location={"floor": floor, "zone": room1, "x": 2.0, "y": 2.0, "estimated_at": now},
    )
    make(
        "Pump B",
        pump,
        department=icu,
        serial_number="SN-1002",
        model="Volumat",
        status="in-use",
        location={"floor": floor, "zone": room2, "x": 7.0, "y": 2.0, "estimated_at": now},
    )
    make(
        "Chair 1",
        chair,
        department=surgery,
        location={
            "floor": floor,
            "zone": room1,
            "x": 1.0,
            "y": 4.0,
            "estimated_at": now - timedelta(hours=2),
            "presence": "missing",
        },
    )
    make(
        "Pump C",
        pump,
        status="maintenance",
        location={"floor": other, "x": 10.0, "y": 10.0, "estimated_at": now},
    )
    make("Bed 7", bed)
    return w
