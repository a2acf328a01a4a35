"""Validation of site description files (CONTRACT.md section 1), without Django.

The whole document is checked before anything is written, and every problem is reported with the
path of the offending value (`buildings[0].floors[1].zones[3].polygon: self-intersecting`), so a
biomed engineer can fix a 2,000-line file in one pass.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from shapely.geometry import Polygon, box

from hospital.geometry import polygon_problem
from tracking.tagids import canonical_tag_id

ZONE_KINDS = (
    "room",
    "corridor",
    "storage",
    "nurse-station",
    "clean-utility",
    "soiled-utility",
    "pharmacy",
    "blood-bank",
    "lab",
    "operating-room",
    "office",
    "lobby",
    "stairs",
    "elevator",
    "exit",
    "other",
)
SCANNER_KINDS = ("ble", "rfid")
MOBILITIES = ("parked", "roaming")

_DOCUMENT_KEYS = {"name": True, "buildings": True, "assets": False, "departments": False}
_DOCUMENT_KEYS |= {"asset_types": False}
_DEPARTMENT_KEYS = {"name": True, "code": False}
_ASSET_TYPE_KEYS = {"slug": True, "name": False, "mobility": False}
_BUILDING_KEYS = {"name": True, "floors": True}
_FLOOR_KEYS = {
    "name": True,
    "level": True,
    "width_m": True,
    "height_m": True,
    "zones": False,
    "scanners": False,
    "sensors": False,
}
_ZONE_KEYS = {"name": True, "kind": True, "polygon": True, "department": False}
_SCANNER_KEYS = {
    "serial": True,
    "kind": True,
    "x": True,
    "y": True,
    "z": False,
    "rssi_at_1m": False,
    "path_loss_exponent": False,
    "rssi_offset_db": False,
    "description": False,
}
_SENSOR_KEYS = {
    "serial": True,
    "kind": True,
    "zone": True,
    "profile": True,
    "contents": False,
    "expected_interval_s": False,
}
_ASSET_KEYS = {
    "name": True,
    "type": True,
    "tag": False,
    "department": False,
    "serial_number": False,
    "manufacturer": False,
    "model": False,
    "status": False,
}
ASSET_STATUSES = ("available", "in-use", "needs-cleaning", "maintenance", "retired")


class SiteFileError(ValueError):
    """Every problem found in a site file, each as 'path: message'."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = "\n".join(problems[:50])
        more = f"\n... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} problem(s) in site file:\n{shown}{more}")


def read_site_file(path: str | Path) -> dict[str, Any]:
    """Parse JSON or YAML (chosen by extension; JSON is tried first for other names)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SiteFileError([f"{path}: cannot read ({exc.strerror})"]) from exc
    except UnicodeDecodeError as exc:
        raise SiteFileError([f"{path}: not UTF-8 text"]) from exc
    return parse_site_text(text, yaml_first=path.suffix.lower() in {".yaml", ".yml"})


def parse_site_text(text: str, yaml_first: bool = False) -> dict[str, Any]:
    if not yaml_first:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            if text.lstrip().startswith(("{", "[")):
                raise SiteFileError([f"$: invalid JSON at line {exc.lineno}: {exc.msg}"]) from exc
        else:
            return document
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SiteFileError([f"$: invalid YAML: {exc}"]) from exc
    return document


@dataclass
class _Checker:
    problems: list[str]

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def mapping(self, value: Any, path: str, keys: dict[str, bool]) -> bool:
        if not isinstance(value, dict):
            self.add(path, f"must be an object, not {_type_name(value)}")
            return False
        for key in value:
            if key not in keys:
                self.add(f"{path}.{key}", "unknown key")
        for key, required in keys.items():
            if required and key not in value:
                self.add(f"{path}.{key}", "is required")
        return True

    def items(self, parent: dict, key: str, path: str, required: bool = False) -> list:
        value = parent.get(key, None if required else [])
        if value is None and not required:
            return []
        if not isinstance(value, list):
            if key in parent:
                self.add(f"{path}.{key}", f"must be a list, not {_type_name(value)}")
            return []
        return value

    def text(self, parent: dict, key: str, path: str, max_length: int = 120) -> str | None:
        if key not in parent:
            return None
        value = parent[key]
        if not isinstance(value, str) or not value.strip():
            self.add(f"{path}.{key}", "must be a non-empty string")
            return None
        if len(value) > max_length:
            self.add(f"{path}.{key}", f"must be at most {max_length} characters")
            return None
        return value

    def number(
        self,
        parent: dict,
        key: str,
        path: str,
        low: float | None = None,
        high: float | None = None,
        integer: bool = False,
    ) -> float | None:
        if key not in parent:
            return None
        value = parent[key]
        wanted = "an integer" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.add(f"{path}.{key}", f"must be {wanted}, not {_type_name(value)}")
            return None
        if integer and not isinstance(value, int):
            self.add(f"{path}.{key}", f"must be {wanted}")
            return None
        if not math.isfinite(value):
            self.add(f"{path}.{key}", "must be finite")
            return None
        if (low is not None and value < low) or (high is not None and value > high):
            self.add(f"{path}.{key}", f"must be between {low} and {high}, got {value}")
            return None
        return value

    def choice(self, parent: dict, key: str, path: str, choices: Iterable[str]) -> str | None:
        value = self.text(parent, key, path)
        if value is not None and value not in choices:
            self.add(f"{path}.{key}", f"{value!r} is not one of {', '.join(choices)}")
            return None
        return value

    def unique(self, seen: dict[str, str], value: str | None, path: str, what: str) -> None:
        if value is None:
            return
        if value in seen:
            self.add(path, f"duplicate {what} {value!r} (also at {seen[value]})")
        else:
            seen[value] = path


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def validate_site_document(
    document: Any,
    profiles: Iterable[str] | None = None,
    sensor_kinds: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Check a parsed site document; return it with tag ids canonical, or raise SiteFileError.

    `profiles` and `sensor_kinds` are the threshold-profile slugs and sensor kinds the database
    knows; None skips those two checks.
    """
    check = _Checker([])
    if not check.mapping(document, "$", _DOCUMENT_KEYS):
        raise SiteFileError(check.problems)
    check.text(document, "name", "name", max_length=200)

    departments: dict[str, str] = {}
    for index, department in enumerate(check.items(document, "departments", "$")):
        path = f"departments[{index}]"
        if check.mapping(department, path, _DEPARTMENT_KEYS):
            name = check.text(department, "name", path)
            check.unique(departments, name, f"{path}.name", "department")
            check.text(department, "code", path, max_length=40)

    asset_types: dict[str, str] = {}
    for index, asset_type in enumerate(check.items(document, "asset_types", "$")):
        path = f"asset_types[{index}]"
        if check.mapping(asset_type, path, _ASSET_TYPE_KEYS):
            slug = check.text(asset_type, "slug", path, max_length=64)
            check.unique(asset_types, slug, f"{path}.slug", "asset type")
            check.text(asset_type, "name", path)
            check.choice(asset_type, "mobility", path, MOBILITIES)

    scanner_serials: dict[str, str] = {}
    sensor_serials: dict[str, str] = {}
    building_names: dict[str, str] = {}
    buildings = check.items(document, "buildings", "$", required=True)
    if "buildings" in document and not buildings and isinstance(document["buildings"], list):
        check.add("buildings", "must list at least one building")
    for b_index, building in enumerate(buildings):
        b_path = f"buildings[{b_index}]"
        if not check.mapping(building, b_path, _BUILDING_KEYS):
            continue
        check.unique(building_names, check.text(building, "name", b_path), b_path, "building")
        floor_names: dict[str, str] = {}
        for f_index, floor in enumerate(check.items(building, "floors", b_path, required=True)):
            f_path = f"{b_path}.floors[{f_index}]"
            _check_floor(
                check,
                floor,
                f_path,
                floor_names,
                scanner_serials,
                sensor_serials,
                departments if "departments" in document else None,
                set(profiles) if profiles is not None else None,
                set(sensor_kinds) if sensor_kinds is not None else None,
            )

    asset_names: dict[str, str] = {}
    tag_ids: dict[str, str] = {}
    for index, asset in enumerate(check.items(document, "assets", "$")):
        path = f"assets[{index}]"
        if not check.mapping(asset, path, _ASSET_KEYS):
            continue
        check.unique(asset_names, check.text(asset, "name", path), f"{path}.name", "asset name")
        check.text(asset, "type", path, max_length=64)
        for key in ("department", "serial_number", "manufacturer", "model"):
            check.text(asset, key, path)
        check.choice(asset, "status", path, ASSET_STATUSES)
        if (
            "department" in asset
            and "departments" in document
            and asset["department"] not in departments
        ):
            check.add(f"{path}.department", f"unknown department {asset['department']!r}")
        raw_tag = check.text(asset, "tag", path, max_length=128)
        if raw_tag is not None:
            try:
                asset["tag"] = canonical_tag_id(raw_tag)
            except ValueError as exc:
                check.add(f"{path}.tag", str(exc))
            else:
                check.unique(tag_ids, asset["tag"], f"{path}.tag", "tag")

    if check.problems:
        raise SiteFileError(check.problems)
    return document


def _check_floor(
    check: _Checker,
    floor: Any,
    path: str,
    floor_names: dict[str, str],
    scanner_serials: dict[str, str],
    sensor_serials: dict[str, str],
    departments: dict[str, str] | None,
    profiles: set[str] | None,
    sensor_kinds: set[str] | None,
) -> None:
    if not check.mapping(floor, path, _FLOOR_KEYS):
        return
    check.unique(floor_names, check.text(floor, "name", path), f"{path}.name", "floor")
    check.number(floor, "level", path, low=-20, high=300, integer=True)
    width = check.number(floor, "width_m", path, low=0.5, high=5000)
    height = check.number(floor, "height_m", path, low=0.5, high=5000)
    outline = box(0, 0, width, height).buffer(1e-6) if width and height else None

    zone_names: dict[str, str] = {}
    shapes: list[tuple[str, str, Polygon]] = []
    for index, zone in enumerate(check.items(floor, "zones", path)):
        z_path = f"{path}.zones[{index}]"
        if not check.mapping(zone, z_path, _ZONE_KEYS):
            continue
        name = check.text(zone, "name", z_path)
        check.unique(zone_names, name, f"{z_path}.name", "zone")
        check.choice(zone, "kind", z_path, ZONE_KINDS)
        if departments is not None and "department" in zone:
            if zone["department"] not in departments:
                check.add(f"{z_path}.department", f"unknown department {zone['department']!r}")
        elif "department" in zone:
            check.text(zone, "department", z_path)
        polygon = _check_polygon(check, zone.get("polygon"), f"{z_path}.polygon")
        if polygon is None or "polygon" not in zone:
            continue
        if outline is not None and not outline.contains(polygon):
            check.add(f"{z_path}.polygon", "lies outside the floor")
        for other_name, other_path, other in shapes:
            if polygon.intersects(other) and polygon.intersection(other).area > 1e-9:
                check.add(f"{z_path}.polygon", f"overlaps zone {other_name!r} ({other_path})")
        shapes.append((name or "?", z_path, polygon))

    for index, scanner in enumerate(check.items(floor, "scanners", path)):
        s_path = f"{path}.scanners[{index}]"
        if not check.mapping(scanner, s_path, _SCANNER_KEYS):
            continue
        serial = check.text(scanner, "serial", s_path, max_length=64)
        check.unique(scanner_serials, serial, f"{s_path}.serial", "scanner serial")
        check.choice(scanner, "kind", s_path, SCANNER_KINDS)
        x = check.number(scanner, "x", s_path)
        y = check.number(scanner, "y", s_path)
        check.number(scanner, "z", s_path, low=0, high=50)
        check.number(scanner, "rssi_at_1m", s_path, low=-120, high=0)
        check.number(scanner, "path_loss_exponent", s_path, low=1.0, high=6.0)
        check.number(scanner, "rssi_offset_db", s_path, low=-30, high=30)
        check.text(scanner, "description", s_path, max_length=200)
        inside = x is None or y is None or not width or not height
        if not inside and not (0 <= x <= width and 0 <= y <= height):
            check.add(s_path, f"scanner at ({x}, {y}) lies outside its floor")

    for index, sensor in enumerate(check.items(floor, "sensors", path)):
        s_path = f"{path}.sensors[{index}]"
        if not check.mapping(sensor, s_path, _SENSOR_KEYS):
            continue
        serial = check.text(sensor, "serial", s_path, max_length=64)
        check.unique(sensor_serials, serial, f"{s_path}.serial", "sensor serial")
        kind = check.text(sensor, "kind", s_path, max_length=32)
        if kind is not None and sensor_kinds is not None and kind not in sensor_kinds:
            check.add(f"{s_path}.kind", f"{kind!r} is not one of {', '.join(sorted(sensor_kinds))}")
        zone = check.text(sensor, "zone", s_path)
        if zone is not None and zone not in zone_names:
            check.add(f"{s_path}.zone", f"no zone {zone!r} on this floor")
        profile = check.text(sensor, "profile", s_path, max_length=64)
        if profile is not None and profiles is not None and profile not in profiles:
            check.add(f"{s_path}.profile", f"unknown threshold profile {profile!r}")
        check.text(sensor, "contents", s_path, max_length=200)
        check.number(sensor, "expected_interval_s", s_path, low=1, high=86400, integer=True)


def _check_polygon(check: _Checker, value: Any, path: str) -> Polygon | None:
    if value is None:
        return None
    if not isinstance(value, list):
        check.add(path, f"must be a list of [x, y] points, not {_type_name(value)}")
        return None
    for index, point in enumerate(value):
        if (
            not isinstance(point, list)
            or len(point) != 2
            or any(isinstance(c, bool) or not isinstance(c, (int, float)) for c in point)
            or not all(math.isfinite(c) for c in point)
        ):
            check.add(f"{path}[{index}]", "must be an [x, y] pair of finite numbers")
            return None
    problem = polygon_problem(value)
    if problem:
        check.add(path, problem)
        return None
    return Polygon(value)
