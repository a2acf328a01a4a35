"""The pipeline's writes: the set-based statements (PostgreSQL) and the ORM path (the embedded
SQLite demo) leave the same rows, including the columns that are all null in a chunk."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import (
    AssetFactory,
    AssetLocationFactory,
    FloorFactory,
    TagFactory,
    ZoneFactory,
    ZoneStayFactory,
)
from tracking import store
from tracking.models import AssetLocation, AssetStatus, PositionSample, Presence, Tag, ZoneStay

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


@pytest.fixture(params=["statement", "orm"])
def path(request, monkeypatch):
    if request.param == "orm":
        monkeypatch.setattr(store, "set_based", lambda: False)
    return request.param


def location_row(asset, floor, zone=None, *, x=1.0, at=T0, confirmed=None):
    return (
        asset.pk,
        floor.pk,
        zone.pk if zone else None,
        x,
        2.0,
        3.5,
        at,
        at + timedelta(seconds=1),
        Presence.PRESENT.value,
        0.9 if zone else None,
        4 if zone else None,
        confirmed.pk if confirmed else None,
        at if confirmed else None,
    )


def test_locations_are_inserted_then_replaced(path):
    floor = FloorFactory()
    zone = ZoneFactory(floor=floor)
    first, second = AssetFactory(), AssetFactory()
    store.upsert_locations([location_row(first, floor), location_row(second, floor)])
    later = T0 + timedelta(seconds=5)
    store.upsert_locations([location_row(first, floor, zone, x=7.0, at=later, confirmed=zone)])

    moved = AssetLocation.objects.get(asset=first)
    assert (moved.zone_id, moved.x, moved.estimated_at) == (zone.pk, 7.0, later)
    assert (moved.zone_probability, moved.scanners_used) == (0.9, 4)
    assert (moved.confirmed_zone_id, moved.confirmed_at) == (zone.pk, later)
    untouched = AssetLocation.objects.get(asset=second)
    assert untouched.zone_id is None
    assert untouched.confirmed_at is None
    assert untouched.last_seen_at == T0 + timedelta(seconds=1)


def test_a_replayed_sample_is_kept_once(path):
    floor = FloorFactory()
    asset = AssetFactory()
    row = (asset.pk, T0, floor.pk, None, 1.0, 2.0, 3.0)
    store.insert_samples([row, (asset.pk, T0 + timedelta(seconds=30), floor.pk, None, 4, 5, 6)])
    store.insert_samples([(asset.pk, T0, floor.pk, None, 9.0, 9.0, 9.0)])

    samples = list(PositionSample.objects.filter(asset=asset).values_list("ts", "x"))
    assert samples == [(T0, 1.0), (T0 + timedelta(seconds=30), 4.0)]


def test_a_zone_change_closes_the_open_stay_and_opens_the_new_one(path):
    floor = FloorFactory()
    ward, corridor = ZoneFactory(floor=floor), ZoneFactory(floor=floor)
    asset = AssetFactory()
    ZoneStayFactory(asset=asset, zone=ward, entered_at=T0, left_at=None)
    moment = T0 + timedelta(minutes=3)

    store.write_stays([(asset.pk, moment, corridor.pk)])
    store.write_stays([(asset.pk, moment, corridor.pk)])

    stays = list(
        ZoneStay.objects.filter(asset=asset)
        .order_by("entered_at")
        .values_list("zone_id", "left_at")
    )
    assert stays == [(ward.pk, moment), (corridor.pk, None)]


def test_leaving_every_zone_only_closes_the_stay(path):
    floor = FloorFactory()
    ward = ZoneFactory(floor=floor)
    asset = AssetFactory()
    ZoneStayFactory(asset=asset, zone=ward, entered_at=T0, left_at=None)
    moment = T0 + timedelta(minutes=1)

    store.write_stays([(asset.pk, moment, None)])

    assert list(ZoneStay.objects.filter(asset=asset).values_list("left_at", flat=True)) == [moment]


def test_several_changes_of_one_asset_in_a_chunk_are_applied_in_order(path):
    floor = FloorFactory()
    ward, corridor, lab = (ZoneFactory(floor=floor) for _ in range(3))
    wanderer, settled = AssetFactory(), AssetFactory()
    ZoneStayFactory(asset=wanderer, zone=ward, entered_at=T0, left_at=None)
    ZoneStayFactory(asset=settled, zone=lab, entered_at=T0, left_at=None)
    at = [T0 + timedelta(seconds=10 * n) for n in range(1, 6)]

    store.write_stays(
        [
            (wanderer.pk, at[0], corridor.pk),
            (settled.pk, at[0], ward.pk),
            (wanderer.pk, at[1], None),
            (wanderer.pk, at[2], lab.pk),
            (wanderer.pk, at[3], corridor.pk),
            (wanderer.pk, at[4], corridor.pk),
        ]
    )

    def stays(asset):
        rows = ZoneStay.objects.filter(asset=asset).order_by("entered_at", "zone_id")
        return list(rows.values_list("zone_id", "entered_at", "left_at"))

    assert stays(wanderer) == [
        (ward.pk, T0, at[0]),
        (corridor.pk, at[0], at[1]),
        (lab.pk, at[2], at[3]),
        (corridor.pk, at[3], None),
    ]
    assert stays(settled) == [(lab.pk, T0, at[0]), (ward.pk, at[0], None)]


def test_a_replayed_chunk_of_zone_changes_leaves_the_stays_as_they_were(path):
    """Replayed from its first change, a chunk meets the stays it wrote: every change is at or
    before the asset's newest stay event, so none is applied twice."""
    floor = FloorFactory()
    ward, corridor, lab = (ZoneFactory(floor=floor) for _ in range(3))
    asset = AssetFactory()
    ZoneStayFactory(asset=asset, zone=ward, entered_at=T0, left_at=None)
    at = [T0 + timedelta(seconds=10 * n) for n in range(1, 5)]
    chunk = [
        (asset.pk, at[0], corridor.pk),
        (asset.pk, at[1], lab.pk),
        (asset.pk, at[2], None),
        (asset.pk, at[3], ward.pk),
    ]

    def stays():
        rows = ZoneStay.objects.filter(asset=asset).order_by("entered_at", "zone_id")
        return list(rows.values_list("zone_id", "entered_at", "left_at"))

    store.write_stays(chunk)
    written = stays()
    assert written == [
        (ward.pk, T0, at[0]),
        (corridor.pk, at[0], at[1]),
        (lab.pk, at[1], at[2]),
        (ward.pk, at[3], None),
    ]
    store.write_stays(chunk)
    assert stays() == written
    store.write_stays(chunk[2:])  # a replay from a later chunk boundary
    assert stays() == written
    store.write_stays([(asset.pk, at[3] + timedelta(seconds=5), lab.pk)])  # a new change
    assert stays()[-2:] == [
        (ward.pk, at[3], at[3] + timedelta(seconds=5)),
        (lab.pk, at[3] + timedelta(seconds=5), None),
    ]


def test_last_seen_only_moves_forward(path):
    location = AssetLocationFactory(last_seen_at=T0, presence=Presence.MISSING)
    older = AssetLocationFactory(last_seen_at=T0, presence=Presence.MISSING)

    store.touch_last_seen(
        {location.asset_id: T0 + timedelta(seconds=10), older.asset_id: T0 - timedelta(seconds=10)}
    )

    location.refresh_from_db()
    older.refresh_from_db()
    assert (location.last_seen_at, location.presence) == (
        T0 + timedelta(seconds=10),
        Presence.PRESENT,
    )
    assert (older.last_seen_at, older.presence) == (T0, Presence.MISSING)


def test_battery_levels_are_written_by_tag_id(path):
    tag = TagFactory(battery_pct=90.0)
    other = TagFactory(battery_pct=80.0)

    store.write_batteries({tag.tag_id: 41.5})

    assert Tag.objects.get(pk=tag.pk).battery_pct == 41.5
    assert Tag.objects.get(pk=other.pk).battery_pct == 80.0


def test_statuses_of_the_updated_assets(path):
    available, in_use = (
        AssetFactory(status=AssetStatus.AVAILABLE),
        AssetFactory(status=AssetStatus.IN_USE),
    )

    assert store.asset_statuses([available.pk, in_use.pk, 10**9]) == {
        available.pk: AssetStatus.AVAILABLE,
        in_use.pk: AssetStatus.IN_USE,
    }
    assert store.asset_statuses([]) == {}
