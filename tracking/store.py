"""The pipeline's writes to the database, each one statement per chunk on PostgreSQL.

A worker writes thousands of rows a second; built by the ORM (bulk_create compiles and quotes
every value in Python), that was a quarter of a worker's CPU. On PostgreSQL each write here is
one statement over `unnest` of typed arrays, sent with server-side binding in psycopg's binary
format (hospital.prepared: planned once per connection). It runs on Django's connection, inside
the caller's transaction. The embedded SQLite demo takes the ORM path, with the same result.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from django.db import connection

from hospital import prepared
from tracking.models import (
    Asset,
    AssetLocation,
    PositionSample,
    Presence,
    Scanner,
    ScannerHealth,
    Tag,
    ZoneStay,
)

#: Location columns written by every position update, in the order of a location row.
LOCATION_COLUMNS = (
    ("asset_id", "bigint"),
    ("floor_id", "bigint"),
    ("zone_id", "bigint"),
    ("x", "double precision"),
    ("y", "double precision"),
    ("accuracy_m", "double precision"),
    ("estimated_at", "timestamptz"),
    ("last_seen_at", "timestamptz"),
    ("presence", "text"),
    ("zone_probability", "double precision"),
    ("scanners_used", "integer"),
    ("confirmed_zone_id", "bigint"),
    ("confirmed_at", "timestamptz"),
)
LOCATION_TYPES = tuple(kind for _, kind in LOCATION_COLUMNS)
SAMPLE_COLUMNS = (
    ("asset_id", "bigint"),
    ("ts", "timestamptz"),
    ("floor_id", "bigint"),
    ("zone_id", "bigint"),
    ("x", "double precision"),
    ("y", "double precision"),
    ("accuracy_m", "double precision"),
)
SAMPLE_TYPES = tuple(kind for _, kind in SAMPLE_COLUMNS)
CLOSING_TYPES = ("bigint", "timestamptz", "bigint")  # asset, moment, new zone
OPENING_TYPES = ("bigint", "bigint", "timestamptz")  # asset, zone, entered at
HEARD_TYPES = ("bigint", "timestamptz")
ACTIVITY_TYPES = ("bigint", "bigint", "bigint", "timestamptz")  # scanner, accepted, rejected, last
BATTERY_TYPES = ("text", "double precision")


def set_based() -> bool:
    return connection.vendor == "postgresql"


def _unnest(types: tuple[str, ...]) -> str:
    """Typed arrays in psycopg's binary format (`%b`): the text format quotes every element in
    Python, and for a chunk's thousands of values that was most of the write's client CPU."""
    return "unnest(" + ", ".join(f"%b::{kind}[]" for kind in types) + ")"


def _columns(rows: list[tuple], types: tuple[str, ...]) -> list[list]:
    """Rows to one list per column; numbers of float columns made floats (psycopg will not
    dump a list that mixes int and float)."""
    columns = [list(column) for column in zip(*rows, strict=True)]
    for index, kind in enumerate(types):
        if kind == "double precision":
            columns[index] = [None if v is None else float(v) for v in columns[index]]
    return columns


def upsert_locations(rows: list[tuple]) -> None:
    """Current locations, one row per asset (`LOCATION_COLUMNS` order): inserted or replaced."""
    if not rows:
        return
    names = [name for name, _ in LOCATION_COLUMNS]
    if not set_based():
        AssetLocation.objects.bulk_create(
            [AssetLocation(**dict(zip(names, row, strict=True))) for row in rows],
            update_conflicts=True,
            unique_fields=["asset"],
            update_fields=names[1:],
        )
        return
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in names[1:])
    prepared.execute(
        f"INSERT INTO {prepared.table(AssetLocation)} ({', '.join(names)}) "  # noqa: S608  # nosec B608
        f"SELECT * FROM {_unnest(LOCATION_TYPES)} "
        f"ON CONFLICT (asset_id) DO UPDATE SET {updates}",
        _columns(rows, LOCATION_TYPES),
    )


def insert_samples(rows: list[tuple]) -> None:
    """History samples (`SAMPLE_COLUMNS` order); a sample already stored for that asset and
    time (a replayed chunk) is left as it is."""
    if not rows:
        return
    names = [name for name, _ in SAMPLE_COLUMNS]
    if not set_based():
        PositionSample.objects.bulk_create(
            [PositionSample(**dict(zip(names, row, strict=True))) for row in rows],
            ignore_conflicts=True,
        )
        return
    prepared.execute(
        f"INSERT INTO {prepared.table(PositionSample)} ({', '.join(names)}) "  # noqa: S608  # nosec B608
        f"SELECT * FROM {_unnest(SAMPLE_TYPES)} ON CONFLICT DO NOTHING",
        _columns(rows, SAMPLE_TYPES),
    )


def write_stays(zone_changes: list[tuple[int, datetime, int | None]]) -> None:
    """Apply zone changes (asset, moment, new zone or None), in order per asset: each closes the
    asset's open stay in another zone at that moment and opens one in the new zone unless an open
    stay there exists. A change no later than the asset's newest stay event (its newest stay's
    entry, or its exit) is one already applied, by a chunk now replayed: it is skipped, so a
    replay of several changes cannot close the stays it opened. On PostgreSQL the n-th changes
    of all assets go in one pair of statements, so a chunk costs two statements per round, not
    queries per asset; the rounds keep each asset's changes in order."""
    if not set_based():
        for asset_id, moment, zone_id in zone_changes:
            _change_zone(asset_id, moment, zone_id)
        return
    rounds: list[list[tuple[int, datetime, int | None]]] = []
    seen: Counter[int] = Counter()
    for change in zone_changes:
        position = seen[change[0]]
        seen[change[0]] += 1
        if position == len(rounds):
            rounds.append([])
        rounds[position].append(change)
    stays = prepared.table(ZoneStay)
    # The newest stay holds the asset's newest event; the exit a round's own UPDATE has just
    # written (at the change's moment) must not stop its INSERT, hence > there.
    newest = (
        f"SELECT 1 FROM (SELECT n.entered_at, n.left_at FROM {stays} AS n "  # noqa: S608  # nosec B608
        "WHERE n.asset_id = v.asset_id ORDER BY n.entered_at DESC LIMIT 1) AS newest "
    )
    for changes in rounds:
        prepared.execute(
            f"UPDATE {stays} AS s SET left_at = v.moment "  # noqa: S608  # nosec B608
            f"FROM {_unnest(CLOSING_TYPES)} AS v(asset_id, moment, zone_id) "
            "WHERE s.asset_id = v.asset_id AND s.left_at IS NULL "
            "AND s.zone_id IS DISTINCT FROM v.zone_id "
            f"AND NOT EXISTS ({newest}WHERE newest.entered_at >= v.moment "
            "OR newest.left_at >= v.moment)",
            _columns(changes, CLOSING_TYPES),
        )
        opened = [
            (asset_id, zone_id, moment)
            for asset_id, moment, zone_id in changes
            if zone_id is not None
        ]
        if opened:
            prepared.execute(
                f"INSERT INTO {stays} (asset_id, zone_id, entered_at, left_at) "  # noqa: S608  # nosec B608
                "SELECT v.asset_id, v.zone_id, v.entered_at, NULL "
                f"FROM {_unnest(OPENING_TYPES)} AS v(asset_id, zone_id, entered_at) "
                f"WHERE NOT EXISTS (SELECT 1 FROM {stays} AS s WHERE s.asset_id = v.asset_id "
                "AND s.left_at IS NULL AND s.zone_id = v.zone_id) "
                f"AND NOT EXISTS ({newest}WHERE newest.entered_at >= v.entered_at "
                "OR newest.left_at > v.entered_at)",
                _columns(opened, OPENING_TYPES),
            )


def _change_zone(asset_id: int, moment: datetime, zone_id: int | None) -> None:
    newest = ZoneStay.objects.filter(asset_id=asset_id).order_by("-entered_at").first()
    if newest is not None and (
        newest.entered_at >= moment or (newest.left_at is not None and newest.left_at >= moment)
    ):
        return  # applied already (write_stays)
    ZoneStay.objects.filter(asset_id=asset_id, left_at__isnull=True).exclude(
        zone_id=zone_id
    ).update(left_at=moment)
    if zone_id is None:
        return
    if not ZoneStay.objects.filter(
        asset_id=asset_id, left_at__isnull=True, zone_id=zone_id
    ).exists():
        ZoneStay.objects.create(asset_id=asset_id, zone_id=zone_id, entered_at=moment)


def touch_last_seen(heard_only: dict[int, datetime]) -> None:
    """Heard but not re-located assets: newer last-seen time, present."""
    if not heard_only:
        return
    if not set_based():
        for asset_id, heard in heard_only.items():
            AssetLocation.objects.filter(asset_id=asset_id, last_seen_at__lt=heard).update(
                last_seen_at=heard, presence=Presence.PRESENT
            )
        return
    rows = sorted(heard_only.items())
    prepared.execute(
        f"UPDATE {prepared.table(AssetLocation)} AS l "  # noqa: S608  # nosec B608
        "SET last_seen_at = v.heard, presence = %s "
        f"FROM {_unnest(('bigint', 'timestamptz'))} AS v(asset_id, heard) "
        "WHERE l.asset_id = v.asset_id AND l.last_seen_at < v.heard",
        [Presence.PRESENT.value, *_columns(rows, HEARD_TYPES)],
    )


def write_batteries(batteries: dict[str, float]) -> None:
    """Battery levels that changed since the tag's last write."""
    if not batteries:
        return
    if not set_based():
        for tag, battery in batteries.items():
            Tag.objects.filter(tag_id=tag).update(battery_pct=battery)
        return
    prepared.execute(
        f"UPDATE {prepared.table(Tag)} AS t SET battery_pct = v.battery "  # noqa: S608  # nosec B608
        f"FROM {_unnest(('text', 'double precision'))} AS v(tag_id, battery) "
        "WHERE t.tag_id = v.tag_id",
        _columns(sorted(batteries.items()), BATTERY_TYPES),
    )


def asset_statuses(asset_ids: list[int]) -> dict[int, str]:
    """The current status of some assets, for the live updates."""
    if not asset_ids:
        return {}
    if not set_based():
        return dict(Asset.objects.filter(pk__in=asset_ids).values_list("pk", "status"))
    return dict(
        prepared.rows(
            f"SELECT id, status FROM {prepared.table(Asset)} WHERE id = ANY(%b::bigint[])",  # noqa: S608  # nosec B608
            [asset_ids],
        )
    )


def add_scanner_activity(rows: list[tuple]) -> None:
    """Add gathered batch counts to scanners' health rows (scanner, accepted, rejected, last
    batch time or None), marking them online; a scanner without a health row gets one, in the
    same statement (the first write after a deployment covers every gateway). Scanners deleted
    meanwhile are skipped."""
    health = prepared.table(ScannerHealth)
    prepared.execute(
        f"INSERT INTO {health} AS h (scanner_id, online, agent_version, last_batch_at, "  # noqa: S608  # nosec B608
        "readings_accepted, readings_rejected, details) "
        "SELECT v.scanner_id, true, '', v.last_batch, v.accepted, v.rejected, '{}'::jsonb "
        f"FROM {_unnest(ACTIVITY_TYPES)} AS v(scanner_id, accepted, rejected, last_batch) "
        f"JOIN {prepared.table(Scanner)} AS s ON s.id = v.scanner_id "
        "ON CONFLICT (scanner_id) DO UPDATE SET online = true, "
        "readings_accepted = h.readings_accepted + EXCLUDED.readings_accepted, "
        "readings_rejected = h.readings_rejected + EXCLUDED.readings_rejected, "
        "last_batch_at = GREATEST(h.last_batch_at, EXCLUDED.last_batch_at)",
        _columns(rows, ACTIVITY_TYPES),
    )
