"""FHIR search over the Wardwise tables: parameter parsing and one provider per resource type.

A resource type can come from several tables (Device: assets and sensors; Location: the campus,
buildings, floors and zones), so a provider yields *sources*: a filtered queryset and the
function that maps its rows. Paging walks the sources in a fixed order, counting in the database,
so a page costs one query per source touched, whatever the total.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Q, QuerySet

from environment.models import Sensor, SensorState
from hospital.models import Building, Department, Floor, Site, Zone
from integrations.fhir import mapping
from tracking.models import Asset
from tracking.tagids import canonical_tag_id

DEFAULT_COUNT = 50
MAX_COUNT = 500
COMMON_PARAMS = {"_id", "_count", "_offset", "_format"}


class SearchError(ValueError):
    """A search request that cannot be answered (HTTP 400 with an OperationOutcome)."""


class NotFound(LookupError):
    pass


@dataclass
class Source:
    queryset: QuerySet
    to_resource: Callable


@dataclass
class Page:
    resources: list[dict]
    total: int
    offset: int
    count: int


def split_values(raw: str) -> list[str]:
    return [value.strip() for value in raw.split(",") if value.strip()]


def token(raw: str) -> tuple[str | None, str]:
    """`system|code` -> (system, code); `|code` -> ("", code); `code` -> (None, code)."""
    if "|" in raw:
        system, _, code = raw.partition("|")
        return system, code
    return None, raw


def reference_id(raw: str, resource_type: str) -> str:
    """`Location/12` or `12` -> `12`; a reference to another type is a SearchError."""
    if "/" in raw:
        kind, _, ident = raw.rstrip("/").rpartition("/")
        kind = kind.rsplit("/", 1)[-1]
        if kind != resource_type:
            raise SearchError(f"expected a {resource_type} reference, not {raw!r}")
        return ident
    return raw


_PREFIXED_ID = re.compile(r"^(?:(?P<prefix>[a-z]+)-)?(?P<pk>\d{1,18})$")


def typed_id(raw: str) -> tuple[str, int] | None:
    """`floor-3` -> ("floor", 3); `12` -> ("", 12); anything else None (matches nothing)."""
    match = _PREFIXED_ID.match(raw)
    if not match:
        return None
    return match["prefix"] or "", int(match["pk"])


def ids_of(values: list[str], prefix: str) -> list[int]:
    found = []
    for value in values:
        parsed = typed_id(value)
        if parsed and parsed[0] == prefix:
            found.append(parsed[1])
    return found


_DATE = re.compile(r"^(?P<op>eq|ne|gt|ge|lt|le|sa|eb)?(?P<value>\d{4}-\d{2}-\d{2}(?:T.+)?)$")


def date_range(raw: str) -> tuple[str, datetime, datetime]:
    """A date parameter as (prefix, start, end) of the value's implicit range."""
    match = _DATE.match(raw)
    if not match:
        raise SearchError(f"date {raw!r} is not [prefix]YYYY-MM-DD[Thh:mm:ss[.fff]Z]")
    op = match["op"] or "eq"
    if op in {"ne", "sa", "eb"}:
        raise SearchError(f"date prefix {op!r} is not supported (use eq, gt, ge, lt, le)")
    text = match["value"]
    try:
        if "T" not in text:
            start = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return op, start, start + timedelta(days=1)
        start = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SearchError(f"date {raw!r} is not a valid date or dateTime") from None
    if start.tzinfo is None:
        raise SearchError(f"dateTime {raw!r} needs a time zone (Z or +hh:mm)")
    return op, start, start + timedelta(seconds=1)


def instant_q(field: str, raw: str) -> Q:
    op, start, end = date_range(raw)
    return {
        "eq": Q(**{f"{field}__gte": start, f"{field}__lt": end}),
        "gt": Q(**{f"{field}__gte": end}),
        "ge": Q(**{f"{field}__gte": start}),
        "lt": Q(**{f"{field}__lt": start}),
        "le": Q(**{f"{field}__lt": end}),
    }[op]


def period_q(start_field: str, end_field: str, raw: str) -> Q:
    """FHIR period semantics for an open-ended interval (end null: still going)."""
    op, start, end = date_range(raw)
    still_open = Q(**{f"{end_field}__isnull": True})
    if op == "eq":
        return Q(**{f"{start_field}__lt": end}) & (still_open | Q(**{f"{end_field}__gte": start}))
    if op in {"gt", "ge"}:
        bound = end if op == "gt" else start
        return still_open | Q(**{f"{end_field}__gte": bound})
    bound = start if op == "lt" else end
    return Q(**{f"{start_field}__lt": bound})


class Provider:
    resource_type = ""
    params: dict[str, str] = {}

    def sources(self, params: dict[str, list[str]]) -> list[Source]:
        raise NotImplementedError

    def read(self, ident: str) -> dict:
        for source in self.sources({"_id": [ident]}):
            row = source.queryset.first()
            if row is not None:
                return source.to_resource(row)
        raise NotFound(f"{self.resource_type}/{ident} is not known")

    def search(self, params: dict[str, list[str]], offset: int, count: int) -> Page:
        sources = self.sources(params)
        counts = [source.queryset.count() for source in sources]
        resources: list[dict] = []
        skip = offset
        for source, size in zip(sources, counts, strict=True):
            if skip >= size:
                skip -= size
                continue
            wanted = count - len(resources)
            if wanted <= 0:
                break
            rows = source.queryset.order_by("pk")[skip : skip + wanted]
            resources.extend(source.to_resource(row) for row in rows)
            skip = 0
        return Page(resources, sum(counts), offset, count)


def _any_of(params: dict[str, list[str]], name: str) -> list[list[str]]:
    """Each occurrence of a parameter (AND) as its comma-separated values (OR)."""
    return [split_values(raw) for raw in params.get(name, [])]


def _ids_filter(params, queryset: QuerySet, prefix: str) -> QuerySet:
    for values in _any_of(params, "_id"):
        queryset = queryset.filter(pk__in=ids_of(values, prefix))
    return queryset


class OrganizationProvider(Provider):
    resource_type = "Organization"
    params = {
        "identifier": "token",
        "name": "string",
    }

    def sources(self, params):
        queryset = _ids_filter(params, Department.objects.all(), "")
        for values in _any_of(params, "name"):
            match = Q()
            for value in values:
                match |= Q(name__istartswith=value)
            queryset = queryset.filter(match)
        for values in _any_of(params, "identifier"):
            match = Q()
            for value in values:
                system, code = token(value)
                if system in (None, mapping.SID_DEPARTMENT):
                    match |= Q(code=code)
            queryset = queryset.filter(match) if match else queryset.none()
        return [Source(queryset, mapping.organization)]


class LocationProvider(Provider):
    resource_type = "Location"
    params = {
        "identifier": "token",
        "name": "string",
        "partof": "reference",
        "type": "token",
        "organization": "reference",
        "status": "token",
    }

    def sources(self, params):
        sites = _ids_filter(params, Site.objects.all(), "site")
        buildings = _ids_filter(params, Building.objects.all(), "building")
        floors = _ids_filter(params, Floor.objects.select_related("building"), "floor")
        zones = _ids_filter(
            params, Zone.objects.select_related("floor__building", "department"), ""
        )
        for values in _any_of(params, "name"):
            site_q, building_q, floor_q, zone_q = Q(), Q(), Q(), Q()
            for value in values:
                site_q |= Q(name__istartswith=value)
                building_q |= Q(name__istartswith=value)
                floor_q |= Q(name__istartswith=value) | Q(building__name__istartswith=value)
                zone_q |= Q(name__istartswith=value)
            sites, buildings = sites.filter(site_q), buildings.filter(building_q)
            floors, zones = floors.filter(floor_q), zones.filter(zone_q)
        for values in _any_of(params, "partof"):
            parents = [reference_id(value, "Location") for value in values]
            sites = sites.none()
            buildings = buildings.filter(site_id__in=ids_of(parents, "site"))
            floors = floors.filter(building_id__in=ids_of(parents, "building"))
            zones = zones.filter(floor_id__in=ids_of(parents, "floor"))
        for values in _any_of(params, "type"):
            kinds = [
                code
                for system, code in map(token, values)
                if system in (None, mapping.CS_ZONE_KIND)
            ]
            sites, buildings, floors = sites.none(), buildings.none(), floors.none()
            zones = zones.filter(kind__in=kinds)
        for values in _any_of(params, "organization"):
            departments = [reference_id(value, "Organization") for value in values]
            sites, buildings, floors = sites.none(), buildings.none(), floors.none()
            zones = zones.filter(department_id__in=ids_of(departments, ""))
        for values in _any_of(params, "identifier"):
            natural = Q()
            for value in values:
                system, code = token(value)
                parts = code.split("/")
                if system in (None, mapping.SID_ZONE) and len(parts) == 3:
                    natural |= Q(
                        floor__building__name=parts[0], floor__name=parts[1], name=parts[2]
                    )
            sites, buildings, floors = sites.none(), buildings.none(), floors.none()
            zones = zones.filter(natural) if natural else zones.none()
        for values in _any_of(params, "status"):
            if "active" not in [token(value)[1] for value in values]:
                sites, buildings, floors, zones = (
                    sites.none(),
                    buildings.none(),
                    floors.none(),
                    zones.none(),
                )
        return [
            Source(sites, mapping.site_location),
            Source(buildings, mapping.building_location),
            Source(floors, mapping.floor_location),
            Source(zones, mapping.zone_location),
        ]


class DeviceProvider(Provider):
    resource_type = "Device"
    params = {
        "identifier": "token",
        "type": "token",
        "status": "token",
        "location": "reference",
        "organization": "reference",
        "device-name": "string",
        "manufacturer": "string",
        "model": "string",
    }

    def sources(self, params):
        assets = _ids_filter(
            params,
            Asset.objects.select_related(
                "asset_type", "department", "tag", "location", "location__zone"
            ),
            "",
        )
        sensors = _ids_filter(params, Sensor.objects.select_related("zone"), "sensor")
        for values in _any_of(params, "identifier"):
            asset_q, sensor_q = Q(pk__in=[]), Q(pk__in=[])
            for value in values:
                system, code = token(value)
                if system in (None, mapping.SID_ASSET):
                    asset_q |= Q(name=code)
                if system in (None, mapping.SID_TAG):
                    with contextlib.suppress(ValueError):
                        asset_q |= Q(tag__tag_id=canonical_tag_id(code))
                if system in (None, mapping.SID_SENSOR):
                    sensor_q |= Q(serial=code)
            assets, sensors = assets.filter(asset_q), sensors.filter(sensor_q)
        for values in _any_of(params, "type"):
            asset_q, sensor_q = Q(pk__in=[]), Q(pk__in=[])
            for value in values:
                system, code = token(value)
                if system in (None, mapping.CS_ASSET_TYPE):
                    asset_q |= Q(asset_type__slug=code)
                if system in (None, mapping.CS_SENSOR_KIND):
                    sensor_q |= Q(kind=code)
            assets, sensors = assets.filter(asset_q), sensors.filter(sensor_q)
        for values in _any_of(params, "status"):
            codes = {token(value)[1] for value in values}
            asset_q = Q(pk__in=[])
            if "active" in codes:
                asset_q |= ~Q(status="retired")
            if "inactive" in codes:
                asset_q |= Q(status="retired")
            assets = assets.filter(asset_q)
            sensors = sensors.filter(
                is_active__in=[
                    flag for flag, code in ((True, "active"), (False, "inactive")) if code in codes
                ]
            )
        for values in _any_of(params, "location"):
            places = [reference_id(value, "Location") for value in values]
            zone_ids, floor_ids = ids_of(places, ""), ids_of(places, "floor")
            building_ids = ids_of(places, "building")
            assets = assets.filter(
                Q(location__zone_id__in=zone_ids)
                | Q(location__floor_id__in=floor_ids)
                | Q(location__floor__building_id__in=building_ids)
            )
            sensors = sensors.filter(
                Q(zone_id__in=zone_ids)
                | Q(zone__floor_id__in=floor_ids)
                | Q(zone__floor__building_id__in=building_ids)
            )
        for values in _any_of(params, "organization"):
            departments = ids_of([reference_id(v, "Organization") for v in values], "")
            assets = assets.filter(department_id__in=departments)
            sensors = sensors.none()
        for name, asset_field, sensor_field in (
            ("device-name", "name", "serial"),
            ("manufacturer", "manufacturer", None),
            ("model", "model", None),
        ):
            for values in _any_of(params, name):
                asset_q, sensor_q = Q(pk__in=[]), Q(pk__in=[])
                for value in values:
                    asset_q |= Q(**{f"{asset_field}__icontains": value})
                    if sensor_field:
                        sensor_q |= Q(**{f"{sensor_field}__icontains": value})
                assets, sensors = assets.filter(asset_q), sensors.filter(sensor_q)
        return [Source(assets, mapping.asset_device), Source(sensors, mapping.sensor_device)]


TEMPERATURE_CODES = {
    (mapping.CS_MEASUREMENT, mapping.MEASUREMENT_STORAGE_TEMPERATURE),
    (mapping.LOINC, mapping.LOINC_ROOM_TEMPERATURE[0]),
}
EXCURSION_KINDS = ("temperature-high", "temperature-low")


class ObservationProvider(Provider):
    resource_type = "Observation"
    params = {
        "subject": "reference",
        "device": "reference",
        "code": "token",
        "category": "token",
        "status": "token",
        "date": "date",
    }

    def sources(self, params):
        from alerts.models import Alert

        temperatures = SensorState.objects.select_related("sensor__zone").filter(
            temperature_c__isnull=False, sensor__is_active=True
        )
        excursions = Alert.objects.select_related("sensor__zone").filter(
            source="environment", kind__in=EXCURSION_KINDS, sensor__isnull=False
        )
        for values in _any_of(params, "_id"):
            temperatures = temperatures.filter(sensor_id__in=ids_of(values, "temperature"))
            excursions = excursions.filter(pk__in=ids_of(values, "excursion"))
        for values in _any_of(params, "subject"):
            zones = ids_of([reference_id(value, "Location") for value in values], "")
            temperatures = temperatures.filter(sensor__zone_id__in=zones)
            excursions = excursions.filter(sensor__zone_id__in=zones)
        for values in _any_of(params, "device"):
            sensors = ids_of([reference_id(value, "Device") for value in values], "sensor")
            temperatures = temperatures.filter(sensor_id__in=sensors)
            excursions = excursions.filter(sensor_id__in=sensors)
        for values in _any_of(params, "code"):
            codes = [token(value) for value in values]
            temperature_q = Q(pk__in=[])
            for system, code in codes:
                for known_system, known_code in TEMPERATURE_CODES:
                    if code == known_code and system in (None, known_system):
                        temperature_q |= (
                            Q(sensor__kind="room")
                            if known_system == mapping.LOINC
                            else ~Q(sensor__kind="room")
                        )
            wants_excursions = any(
                code == mapping.MEASUREMENT_EXCURSION and system in (None, mapping.CS_MEASUREMENT)
                for system, code in codes
            )
            temperatures = temperatures.filter(temperature_q)
            if not wants_excursions:
                excursions = excursions.none()
        for values in _any_of(params, "category"):
            if not any(
                code == "environment" and system in (None, mapping.CS_MEASUREMENT)
                for system, code in map(token, values)
            ):
                temperatures, excursions = temperatures.none(), excursions.none()
        for values in _any_of(params, "status"):
            codes = {token(value)[1] for value in values}
            if "final" not in codes:
                temperatures = temperatures.none()
            excursion_q = Q(pk__in=[])
            if "final" in codes:
                excursion_q |= Q(ended_at__isnull=False)
            if "preliminary" in codes:
                excursion_q |= Q(ended_at__isnull=True)
            excursions = excursions.filter(excursion_q)
        for raw in params.get("date", []):
            temperatures = temperatures.filter(instant_q("last_ts", raw))
            excursions = excursions.filter(period_q("started_at", "ended_at", raw))
        return [
            Source(temperatures, mapping.temperature_observation),
            Source(excursions, mapping.excursion_observation),
        ]

    def read(self, ident: str) -> dict:
        parsed = typed_id(ident)
        if parsed is None or parsed[0] not in {"temperature", "excursion"}:
            raise NotFound(f"Observation/{ident} is not known")
        return super().read(ident)


PROVIDERS: dict[str, Provider] = {
    provider.resource_type: provider
    for provider in (
        DeviceProvider(),
        LocationProvider(),
        ObservationProvider(),
        OrganizationProvider(),
    )
}
