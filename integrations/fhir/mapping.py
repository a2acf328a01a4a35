"""Wardwise objects as FHIR R4 resources (plain dicts, JSON-ready). docs/fhir.md explains each
mapping; tests validate every shape with fhir.resources.

Resource ids: zones are `Location/<zone id>` (the id the rest of the API uses), floors
`Location/floor-<id>`, buildings `Location/building-<id>`, the campus `Location/site-<id>`;
assets are `Device/<asset id>`, sensors `Device/sensor-<id>`; departments `Organization/<id>`;
current temperatures `Observation/temperature-<sensor id>`, excursions
`Observation/excursion-<alert id>`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hospital.models import ZoneKind

BASE = "https://wardwise.example/fhir"
CS_ASSET_TYPE = f"{BASE}/CodeSystem/asset-type"
CS_SENSOR_KIND = f"{BASE}/CodeSystem/sensor-kind"
CS_ZONE_KIND = f"{BASE}/CodeSystem/zone-kind"
CS_MEASUREMENT = f"{BASE}/CodeSystem/measurement"
SID_ASSET = f"{BASE}/sid/asset-name"
SID_TAG = f"{BASE}/sid/tag"
SID_SENSOR = f"{BASE}/sid/sensor-serial"
SID_ZONE = f"{BASE}/sid/zone"
SID_DEPARTMENT = f"{BASE}/sid/department"
EXT_ASSET_STATUS = f"{BASE}/StructureDefinition/asset-status"
EXT_PRESENCE = f"{BASE}/StructureDefinition/asset-presence"
EXT_ACCURACY = f"{BASE}/StructureDefinition/location-accuracy"
EXT_ALERT_STATE = f"{BASE}/StructureDefinition/alert-state"

CS_PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"
CS_DEVICE_STATUS_REASON = "http://terminology.hl7.org/CodeSystem/device-status-reason"
CS_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CS_OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"

PHYSICAL_TYPE_NAMES = {
    "si": "Site",
    "bu": "Building",
    "wi": "Wing",
    "lvl": "Level",
    "co": "Corridor",
    "ro": "Room",
    "area": "Area",
}
#: Zone kind -> location-physical-type code. Enclosed rooms of every purpose are `ro`;
#: corridors `co`; open or transit spaces (lobby, stairs, lifts, exits, other) `area`.
ZONE_PHYSICAL_TYPE = {
    ZoneKind.CORRIDOR: "co",
    ZoneKind.LOBBY: "area",
    ZoneKind.STAIRS: "area",
    ZoneKind.ELEVATOR: "area",
    ZoneKind.EXIT: "area",
    ZoneKind.OTHER: "area",
}

#: Wardwise asset status -> FHIR Device.status (R4: active | inactive | entered-in-error |
#: unknown). Retired equipment is inactive; everything still in the fleet is active, and the
#: exact Wardwise status travels in the asset-status extension.
DEVICE_STATUS = {"retired": "inactive"}

MEASUREMENT_STORAGE_TEMPERATURE = "storage-temperature"
MEASUREMENT_EXCURSION = "temperature-excursion"
LOINC_ROOM_TEMPERATURE = ("60832-3", "Room temperature")


def instant(moment: datetime | None) -> str | None:
    """FHIR instant/dateTime: UTC with milliseconds and Z."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _coding(system: str, code: str, display: str | None = None) -> dict:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _physical_type(code: str) -> dict:
    return {"coding": [_coding(CS_PHYSICAL_TYPE, code, PHYSICAL_TYPE_NAMES[code])]}


def _drop_empty(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if v not in (None, "", [], {})}


def organization(department) -> dict:
    return _drop_empty(
        {
            "resourceType": "Organization",
            "id": str(department.pk),
            "identifier": [{"system": SID_DEPARTMENT, "value": department.code}]
            if department.code
            else None,
            "active": True,
            "type": [
                {
                    "coding": [
                        _coding(
                            "http://terminology.hl7.org/CodeSystem/organization-type",
                            "dept",
                            "Hospital Department",
                        )
                    ]
                }
            ],
            "name": department.name,
        }
    )


def site_location(site) -> dict:
    return {
        "resourceType": "Location",
        "id": f"site-{site.pk}",
        "status": "active",
        "mode": "instance",
        "name": site.name,
        "physicalType": _physical_type("si"),
    }


def building_location(building) -> dict:
    return _drop_empty(
        {
            "resourceType": "Location",
            "id": f"building-{building.pk}",
            "status": "active",
            "mode": "instance",
            "name": building.name,
            "physicalType": _physical_type("bu"),
            "partOf": {"reference": f"Location/site-{building.site_id}"}
            if building.site_id
            else None,
        }
    )


def floor_location(floor) -> dict:
    return {
        "resourceType": "Location",
        "id": f"floor-{floor.pk}",
        "status": "active",
        "mode": "instance",
        "name": f"{floor.building.name} / {floor.name}",
        "alias": [floor.name],
        "description": f"Level {floor.level}, {floor.width_m:g} m x {floor.height_m:g} m",
        "physicalType": _physical_type("lvl"),
        "partOf": {
            "reference": f"Location/building-{floor.building_id}",
            "display": floor.building.name,
        },
    }


def zone_location(zone) -> dict:
    floor = zone.floor
    kind_label = ZoneKind(zone.kind).label if zone.kind in ZoneKind.values else zone.kind
    return _drop_empty(
        {
            "resourceType": "Location",
            "id": str(zone.pk),
            "identifier": [
                {"system": SID_ZONE, "value": f"{floor.building.name}/{floor.name}/{zone.name}"}
            ],
            "status": "active",
            "mode": "instance",
            "name": zone.name,
            "type": [
                {"coding": [_coding(CS_ZONE_KIND, zone.kind, kind_label)], "text": kind_label}
            ],
            "physicalType": _physical_type(ZONE_PHYSICAL_TYPE.get(zone.kind, "ro")),
            "managingOrganization": {
                "reference": f"Organization/{zone.department_id}",
                "display": zone.department.name,
            }
            if zone.department_id
            else None,
            "partOf": {
                "reference": f"Location/floor-{floor.pk}",
                "display": f"{floor.building.name} / {floor.name}",
            },
        }
    )


def asset_device(asset) -> dict:
    """An asset as a Device. Where it is (`location`) comes from its current AssetLocation."""
    kind = asset.asset_type
    location = getattr(asset, "location", None)
    tag = getattr(asset, "tag", None)
    identifiers = [{"system": SID_ASSET, "value": asset.name}]
    if tag is not None:
        identifiers.append({"system": SID_TAG, "value": tag.tag_id})
    extensions = [{"url": EXT_ASSET_STATUS, "valueCode": asset.status}]
    status_reason = None
    place = None
    if location is not None:
        extensions.append({"url": EXT_PRESENCE, "valueCode": location.presence})
        status_reason = [
            {
                "coding": [
                    _coding(CS_DEVICE_STATUS_REASON, "online", "Online")
                    if location.presence == "present"
                    else _coding(CS_DEVICE_STATUS_REASON, "offline", "Offline")
                ]
            }
        ]
        if location.zone_id is not None:
            place = {"reference": f"Location/{location.zone_id}", "display": location.zone.name}
        elif location.floor_id is not None:
            place = {"reference": f"Location/floor-{location.floor_id}"}
    return _drop_empty(
        {
            "resourceType": "Device",
            "id": str(asset.pk),
            "extension": extensions,
            "identifier": identifiers,
            "status": DEVICE_STATUS.get(asset.status, "active"),
            "statusReason": status_reason,
            "manufacturer": asset.manufacturer,
            "serialNumber": asset.serial_number,
            "modelNumber": asset.model,
            "deviceName": [{"name": asset.name, "type": "user-friendly-name"}],
            "type": {"coding": [_coding(CS_ASSET_TYPE, kind.slug, kind.name)], "text": kind.name},
            "owner": {
                "reference": f"Organization/{asset.department_id}",
                "display": asset.department.name,
            }
            if asset.department_id
            else None,
            "location": place,
            "note": [{"text": asset.notes}] if asset.notes else None,
        }
    )


def sensor_device(sensor) -> dict:
    from environment.models import SensorKind

    label = SensorKind(sensor.kind).label if sensor.kind in SensorKind.values else sensor.kind
    return _drop_empty(
        {
            "resourceType": "Device",
            "id": f"sensor-{sensor.pk}",
            "identifier": [{"system": SID_SENSOR, "value": sensor.serial}],
            "status": "active" if sensor.is_active else "inactive",
            "serialNumber": sensor.serial,
            "deviceName": [{"name": sensor.serial, "type": "user-friendly-name"}],
            "type": {
                "coding": [_coding(CS_SENSOR_KIND, sensor.kind, f"{label} sensor")],
                "text": f"{label} temperature sensor",
            },
            "location": {"reference": f"Location/{sensor.zone_id}", "display": sensor.zone.name},
            "note": [{"text": f"Stores: {sensor.contents}"}] if sensor.contents else None,
        }
    )


def _temperature_code(sensor_kind: str) -> dict:
    codings = [
        _coding(CS_MEASUREMENT, MEASUREMENT_STORAGE_TEMPERATURE, "Storage temperature")
        if sensor_kind != "room"
        else _coding(LOINC, *LOINC_ROOM_TEMPERATURE)
    ]
    return {"coding": codings, "text": "Temperature"}


def _celsius(value: float) -> dict:
    return {"value": round(value, 2), "unit": "°C", "system": UCUM, "code": "Cel"}


def _category() -> list[dict]:
    return [
        {
            "coding": [
                _coding(CS_MEASUREMENT, "environment", "Environmental monitoring"),
            ]
        }
    ]


def temperature_observation(state) -> dict:
    """The newest temperature of a sensor (its SensorState), as a final Observation."""
    sensor = state.sensor
    return _drop_empty(
        {
            "resourceType": "Observation",
            "id": f"temperature-{sensor.pk}",
            "status": "final",
            "category": _category(),
            "code": _temperature_code(sensor.kind),
            "subject": {"reference": f"Location/{sensor.zone_id}", "display": sensor.zone.name},
            "effectiveDateTime": instant(state.last_ts),
            "issued": instant(state.last_received_at),
            "valueQuantity": _celsius(state.temperature_c),
            "device": {"reference": f"Device/sensor-{sensor.pk}", "display": sensor.serial},
        }
    )


def excursion_observation(alert) -> dict:
    """A temperature excursion (an environment alert): preliminary while it lasts, final once
    the condition ended; the value is the peak, the interpretation says how far out it went."""
    sensor = alert.sensor
    high = alert.kind == "temperature-high"
    critical = alert.severity == "critical"
    code, display = {
        (True, True): ("HH", "Critical high"),
        (True, False): ("H", "High"),
        (False, True): ("LL", "Critical low"),
        (False, False): ("L", "Low"),
    }[(high, critical)]
    period = {"start": instant(alert.started_at)}
    if alert.ended_at:
        period["end"] = instant(alert.ended_at)
    return _drop_empty(
        {
            "resourceType": "Observation",
            "id": f"excursion-{alert.pk}",
            "extension": [{"url": EXT_ALERT_STATE, "valueCode": alert.state}],
            "status": "final" if alert.ended_at else "preliminary",
            "category": _category(),
            "code": {
                "coding": [
                    _coding(CS_MEASUREMENT, MEASUREMENT_EXCURSION, "Storage temperature excursion")
                ],
                "text": alert.title,
            },
            "subject": {"reference": f"Location/{sensor.zone_id}", "display": sensor.zone.name},
            "effectivePeriod": period,
            "issued": instant(alert.opened_at),
            "valueQuantity": _celsius(alert.peak_value) if alert.peak_value is not None else None,
            "interpretation": [{"coding": [_coding(CS_INTERPRETATION, code, display)]}],
            "note": [{"text": alert.message}] if alert.message else None,
            "device": {"reference": f"Device/sensor-{sensor.pk}", "display": sensor.serial},
        }
    )
