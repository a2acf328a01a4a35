"""Load a validated site document into the database, and export the database as one.

Objects are matched by their natural keys (floor by building + name, zone by floor + name, scanner
and sensor by serial, asset by name, tag by id), so loading twice changes nothing and loading an
edited file updates in place. Everything happens in one transaction: any problem, including one
only the database can see, leaves the database as it was.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Model
from shapely.geometry import Polygon

from environment.models import Sensor, SensorKind, ThresholdProfile
from hospital.models import Building, Department, Floor, Site, Zone
from hospital.sitefile import SiteFileError, validate_site_document
from tracking.models import (
    DEFAULT_PATH_LOSS_EXPONENT,
    DEFAULT_RSSI_AT_1M,
    DEFAULT_SCANNER_HEIGHT_M,
    Asset,
    AssetType,
    Scanner,
    Tag,
)


@dataclass
class LoadReport:
    created: Counter = field(default_factory=Counter)
    updated: Counter = field(default_factory=Counter)
    unchanged: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        kinds = sorted(set(self.created) | set(self.updated) | set(self.unchanged))
        return ", ".join(
            f"{kind}: {self.created[kind]} created, {self.updated[kind]} updated, "
            f"{self.unchanged[kind]} unchanged"
            for kind in kinds
        )


def _upsert(report: LoadReport, model: type[Model], lookup: dict, values: dict) -> Model:
    kind = model._meta.verbose_name_plural
    instance = model.objects.filter(**lookup).first()
    if instance is None:
        instance = model.objects.create(**lookup, **values)
        report.created[kind] += 1
        return instance
    changed = [name for name, value in values.items() if getattr(instance, name) != value]
    if changed:
        for name in changed:
            setattr(instance, name, values[name])
        instance.save()
        report.updated[kind] += 1
    else:
        report.unchanged[kind] += 1
    return instance


def _slug_title(slug: str) -> str:
    return slug.replace("-", " ").replace("_", " ").capitalize()


def load_site_document(document: Any) -> LoadReport:
    """Validate and store a site document; raise SiteFileError and write nothing if invalid."""
    document = validate_site_document(
        document,
        profiles=ThresholdProfile.objects.values_list("slug", flat=True),
        sensor_kinds=SensorKind.values,
    )
    report = LoadReport()
    with transaction.atomic():
        _store(document, report)
        problems = _database_overlaps(document)
        if problems:
            transaction.set_rollback(True)
            raise SiteFileError(problems)
    return report


def _store(document: dict, report: LoadReport) -> None:
    site = _upsert(report, Site, {"name": document["name"]}, {})
    departments = {
        item["name"]: _upsert(
            report, Department, {"name": item["name"]}, {"code": item.get("code") or None}
        )
        for item in document.get("departments", [])
    }

    def department(name: str | None) -> Department | None:
        if name is None:
            return None
        if name not in departments:
            departments[name] = _upsert(report, Department, {"name": name}, {})
        return departments[name]

    profiles = {profile.slug: profile for profile in ThresholdProfile.objects.all()}
    for building_doc in document["buildings"]:
        building = _upsert(report, Building, {"name": building_doc["name"]}, {"site": site})
        for floor_doc in building_doc["floors"]:
            floor = _upsert(
                report,
                Floor,
                {"building": building, "name": floor_doc["name"]},
                {
                    "level": floor_doc["level"],
                    "width_m": float(floor_doc["width_m"]),
                    "height_m": float(floor_doc["height_m"]),
                },
            )
            zones = {}
            for zone_doc in floor_doc.get("zones", []):
                zones[zone_doc["name"]] = _upsert(
                    report,
                    Zone,
                    {"floor": floor, "name": zone_doc["name"]},
                    {
                        "kind": zone_doc["kind"],
                        "polygon": [[float(x), float(y)] for x, y in zone_doc["polygon"]],
                        "department": department(zone_doc.get("department")),
                    },
                )
            for scanner_doc in floor_doc.get("scanners", []):
                _upsert(
                    report,
                    Scanner,
                    {"serial": scanner_doc["serial"]},
                    {
                        "kind": scanner_doc["kind"],
                        "floor": floor,
                        "x": float(scanner_doc["x"]),
                        "y": float(scanner_doc["y"]),
                        "z": float(scanner_doc.get("z", DEFAULT_SCANNER_HEIGHT_M)),
                        "rssi_at_1m": float(scanner_doc.get("rssi_at_1m", DEFAULT_RSSI_AT_1M)),
                        "path_loss_exponent": float(
                            scanner_doc.get("path_loss_exponent", DEFAULT_PATH_LOSS_EXPONENT)
                        ),
                        "rssi_offset_db": float(scanner_doc.get("rssi_offset_db", 0.0)),
                        "description": scanner_doc.get("description", ""),
                    },
                )
            for sensor_doc in floor_doc.get("sensors", []):
                zone = zones.get(sensor_doc["zone"]) or Zone.objects.get(
                    floor=floor, name=sensor_doc["zone"]
                )
                values = {
                    "kind": sensor_doc["kind"],
                    "zone": zone,
                    "profile": profiles[sensor_doc["profile"]],
                    "contents": sensor_doc.get("contents", ""),
                }
                if "expected_interval_s" in sensor_doc:
                    values["expected_interval_s"] = sensor_doc["expected_interval_s"]
                _upsert(report, Sensor, {"serial": sensor_doc["serial"]}, values)

    types = {}
    for type_doc in document.get("asset_types", []):
        values = {"name": type_doc.get("name") or _slug_title(type_doc["slug"])}
        if "mobility" in type_doc:
            values["mobility"] = type_doc["mobility"]
        types[type_doc["slug"]] = _upsert(report, AssetType, {"slug": type_doc["slug"]}, values)
    for asset_doc in document.get("assets", []):
        slug = asset_doc["type"]
        if slug not in types:
            types[slug] = AssetType.objects.filter(slug=slug).first() or _upsert(
                report, AssetType, {"slug": slug}, {"name": _slug_title(slug)}
            )
        values = {
            "asset_type": types[slug],
            "department": department(asset_doc.get("department")),
        }
        for key in ("serial_number", "manufacturer", "model", "status"):
            if key in asset_doc:
                values[key] = asset_doc[key]
        asset = _upsert(report, Asset, {"name": asset_doc["name"]}, values)
        if "tag" in asset_doc:
            Tag.objects.filter(asset=asset).exclude(tag_id=asset_doc["tag"]).update(asset=None)
            _upsert(report, Tag, {"tag_id": asset_doc["tag"]}, {"asset": asset})


def _database_overlaps(document: dict) -> list[str]:
    """Overlaps between the file's zones and zones already in the database but not in the file."""
    problems = []
    for b_index, building_doc in enumerate(document["buildings"]):
        for f_index, floor_doc in enumerate(building_doc["floors"]):
            in_file = {zone["name"]: i for i, zone in enumerate(floor_doc.get("zones", []))}
            others = Zone.objects.filter(
                floor__building__name=building_doc["name"], floor__name=floor_doc["name"]
            ).exclude(name__in=in_file)
            for other in others:
                other_shape = Polygon(other.polygon)
                for index in in_file.values():
                    shape = Polygon(floor_doc["zones"][index]["polygon"])
                    if shape.intersection(other_shape).area > 1e-9:
                        problems.append(
                            f"buildings[{b_index}].floors[{f_index}].zones[{index}].polygon: "
                            f"overlaps zone {other.name!r} already in the database"
                        )
    return problems


def export_site_document() -> dict[str, Any]:
    """The whole site in the site-file format; export -> load -> export is a fixed point."""
    site = Site.objects.order_by("pk").first()
    document: dict[str, Any] = {"name": site.name if site else "Wardwise site"}
    departments = list(Department.objects.order_by("pk"))
    if departments:
        document["departments"] = [
            {"name": d.name, **({"code": d.code} if d.code else {})} for d in departments
        ]
    document["asset_types"] = [
        {"slug": t.slug, "name": t.name, "mobility": t.mobility}
        for t in AssetType.objects.order_by("pk")
    ]
    document["buildings"] = []
    for building in Building.objects.order_by("pk"):
        floors = []
        for floor in building.floors.order_by("pk"):
            floors.append(
                {
                    "name": floor.name,
                    "level": floor.level,
                    "width_m": floor.width_m,
                    "height_m": floor.height_m,
                    "zones": [_zone_doc(zone) for zone in floor.zones.order_by("pk")],
                    "scanners": [_scanner_doc(s) for s in floor.scanners.order_by("pk")],
                    "sensors": [
                        _sensor_doc(s)
                        for s in Sensor.objects.filter(zone__floor=floor)
                        .select_related("zone", "profile")
                        .order_by("pk")
                    ],
                }
            )
        document["buildings"].append({"name": building.name, "floors": floors})
    document["assets"] = [
        _asset_doc(asset)
        for asset in Asset.objects.select_related("asset_type", "department", "tag").order_by("pk")
    ]
    return document


def _zone_doc(zone: Zone) -> dict[str, Any]:
    doc = {"name": zone.name, "kind": zone.kind, "polygon": zone.polygon}
    if zone.department_id:
        doc["department"] = zone.department.name
    return doc


def _scanner_doc(scanner: Scanner) -> dict[str, Any]:
    doc = {
        "serial": scanner.serial,
        "kind": scanner.kind,
        "x": scanner.x,
        "y": scanner.y,
        "z": scanner.z,
        "rssi_at_1m": scanner.rssi_at_1m,
        "path_loss_exponent": scanner.path_loss_exponent,
    }
    if scanner.rssi_offset_db:
        doc["rssi_offset_db"] = scanner.rssi_offset_db
    if scanner.description:
        doc["description"] = scanner.description
    return doc


def _sensor_doc(sensor: Sensor) -> dict[str, Any]:
    doc = {
        "serial": sensor.serial,
        "kind": sensor.kind,
        "zone": sensor.zone.name,
        "profile": sensor.profile.slug,
        "expected_interval_s": sensor.expected_interval_s,
    }
    if sensor.contents:
        doc["contents"] = sensor.contents
    return doc


def _asset_doc(asset: Asset) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": asset.name, "type": asset.asset_type.slug}
    tag = getattr(asset, "tag", None)
    if tag is not None:
        doc["tag"] = tag.tag_id
    if asset.department_id:
        doc["department"] = asset.department.name
    for key in ("serial_number", "manufacturer", "model"):
        if getattr(asset, key):
            doc[key] = getattr(asset, key)
    doc["status"] = asset.status
    return doc
