"""Geofence crossings and quiet hours as plain Python (no Django).

A fence is a zone, every zone of a kind, a floor or a building. An `exit` fence is breached when an
asset known to be inside is next seen in a zone outside it; an `enter` fence when an asset is seen
in a zone inside it after being anywhere else. An asset in no zone is unknown, never "outside":
losing sight of a wheelchair is not evidence it left its floor (the tag-silent alert covers that).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

ENTER = "enter"
EXIT = "exit"

SCOPE_ZONE = "zone"
SCOPE_ZONE_KIND = "zone-kind"
SCOPE_FLOOR = "floor"
SCOPE_BUILDING = "building"

BREACHED = "breached"
RESTORED = "restored"


@dataclass(frozen=True)
class Place:
    zone_id: int
    zone_kind: str
    floor_id: int
    building_id: int


@dataclass(frozen=True)
class FenceSpec:
    id: int
    event: str
    scope: str
    target: int | str
    asset_type_id: int | None = None


def inside(fence: FenceSpec, place: Place | None) -> bool | None:
    """Whether the place is within the fence; None when the asset is in no zone (unknown)."""
    if place is None:
        return None
    value = {
        SCOPE_ZONE: place.zone_id,
        SCOPE_ZONE_KIND: place.zone_kind,
        SCOPE_FLOOR: place.floor_id,
        SCOPE_BUILDING: place.building_id,
    }[fence.scope]
    return value == fence.target


def crossing(fence: FenceSpec, before: Place | None, after: Place | None) -> str | None:
    """`breached` when this move breaks the fence's rule, `restored` when it puts the asset back
    on the right side (the open alert then clears), else None."""
    was, now = inside(fence, before), inside(fence, after)
    if now is None:
        return None
    if fence.event == EXIT:
        if was is True and now is False:
            return BREACHED
        if now is True and was is not True:
            return RESTORED
        return None
    if now is True and was is not True:
        return BREACHED
    if now is False and was is True:
        return RESTORED
    return None


def in_quiet_hours(moment: time, start: time | None, end: time | None) -> bool:
    """Quiet hours from `start` to `end` local time; they may wrap midnight (22:00-06:00).
    No window (either end missing, or both equal) means never quiet."""
    if start is None or end is None or start == end:
        return False
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end
