"""Plain data the engine works on: the site as the engine sees it, readings and estimates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from hospital.geometry import FloorGeometry, ZoneShape

DEFAULT_SCANNER_HEIGHT_M = 2.5
DEFAULT_RSSI_AT_1M = -59.0
DEFAULT_PATH_LOSS_EXPONENT = 2.0


@dataclass(frozen=True)
class ScannerSpec:
    serial: str
    floor: str
    x: float
    y: float
    z: float = DEFAULT_SCANNER_HEIGHT_M
    rssi_at_1m: float = DEFAULT_RSSI_AT_1M
    path_loss_exponent: float = DEFAULT_PATH_LOSS_EXPONENT
    kind: str = "ble"
    rssi_offset_db: float = 0.0


@dataclass(frozen=True)
class FloorSpec:
    name: str
    level: int
    geometry: FloorGeometry
    building: str = ""


@dataclass(frozen=True)
class SiteSpec:
    floors: tuple[FloorSpec, ...]
    scanners: tuple[ScannerSpec, ...]

    def __post_init__(self) -> None:
        names = [floor.name for floor in self.floors]
        if len(set(names)) != len(names):
            raise ValueError("floor names must be unique within a site")
        serials = [scanner.serial for scanner in self.scanners]
        if len(set(serials)) != len(serials):
            raise ValueError("scanner serials must be unique")
        unknown = {scanner.floor for scanner in self.scanners} - set(names)
        if unknown:
            raise ValueError(f"scanners refer to unknown floors: {sorted(unknown)}")

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> SiteSpec:
        """Build from a contract section-1 site document (already validated by its loader).

        Floor names that repeat across buildings are qualified as "<building> / <floor>".
        """
        all_names = [
            floor["name"]
            for building in document.get("buildings", [])
            for floor in building.get("floors", [])
        ]
        floors, scanners = [], []
        for building in document.get("buildings", []):
            for floor in building.get("floors", []):
                name = floor["name"]
                if all_names.count(name) > 1:
                    name = f"{building['name']} / {name}"
                zones = [
                    ZoneShape(
                        zone["name"],
                        zone.get("kind", "room"),
                        tuple((float(x), float(y)) for x, y in zone["polygon"]),
                    )
                    for zone in floor.get("zones", [])
                ]
                geometry = FloorGeometry(floor["width_m"], floor["height_m"], zones)
                floors.append(
                    FloorSpec(name, int(floor.get("level", 0)), geometry, building["name"])
                )
                for scanner in floor.get("scanners", []):
                    scanners.append(
                        ScannerSpec(
                            serial=scanner["serial"],
                            floor=name,
                            x=float(scanner["x"]),
                            y=float(scanner["y"]),
                            z=float(scanner.get("z", DEFAULT_SCANNER_HEIGHT_M)),
                            rssi_at_1m=float(scanner.get("rssi_at_1m", DEFAULT_RSSI_AT_1M)),
                            path_loss_exponent=float(
                                scanner.get("path_loss_exponent", DEFAULT_PATH_LOSS_EXPONENT)
                            ),
                            kind=scanner.get("kind", "ble"),
                            rssi_offset_db=float(scanner.get("rssi_offset_db", 0.0)),
                        )
                    )
        return cls(tuple(floors), tuple(scanners))


class Reading(NamedTuple):
    """One advertisement heard by one scanner (a tuple: cheap to build at 25k+ per second)."""

    ts: float
    scanner: str
    tag: str
    rssi: float


@dataclass(frozen=True)
class Estimate:
    ts: float
    tag: str
    floor: str
    x: float
    y: float
    zone: str
    accuracy_m: float
    scanners_used: int = 0
    zone_probability: float = 1.0


@dataclass(frozen=True)
class EngineConfig:
    """Tuning knobs; the defaults are what the benchmark in docs/localization.md was run with."""

    solve_interval_s: float = 1.0
    solve_interval_still_s: float = 2.0
    # A settled still tag whose smoothed RSSI has not changed beyond its noise since the last
    # solve (chi-square over its scanners, `quiet_evidence_z` standard deviations) is not solved
    # again for up to this long. 0 (default) solves on every interval: quiet solving saves CPU
    # at a small cost in room accuracy on real data (docs/localization.md).
    quiet_solve_max_s: float = 0.0
    quiet_evidence_z: float = 2.0
    max_iterations: int = 5
    zone_hypotheses: int = 4
    zone_prior_scale: float = 1.0
    zone_occam: float = 1.0
    stale_after_s: float = 8.0
    smoothing_tau_still_s: float = 2.0
    smoothing_tau_moving_s: float = 1.2
    outlier_clip_db: float = 8.0
    shadowing_sigma_db: float = 4.0
    fading_sigma_db: float = 4.0
    weak_signal_dbm: float = -85.0
    wall_loss_db: float = 4.0
    floor_loss_db: float = 18.0
    tag_height_m: float = 1.0
    huber_k: float = 1.5
    tag_offset_sigma_db: float = 3.0
    position_prior_sigma_m: float = 6.0
    max_scanners: int = 10
    floor_hysteresis_db: float = 4.0
    floor_recent_s: float = 1.5
    zone_likelihood_temper: float = 1.0
    zone_switch_rate_per_s: float = 0.08
    zone_switch_rate_moving_per_s: float = 1.0
    zone_far_jump_probability: float = 1e-4
    zone_switch_probability: float = 0.85
    zone_switch_probability_moving: float = 0.7
    zone_switch_confirmations: int = 1
    zone_certain_probability: float = 0.97
    zone_direct_weight: float = 1.0
    zone_direct_temperature_db: float = 3.0
    zone_direct_neighbour: float = 0.15
    zone_direct_neighbour_empty: float = 0.5
    zone_direct_far: float = 0.02
    few_scanners_min_sigma_m: float = 2.5
    self_calibration: bool = True
    calibration_max_distance_m: float = 9.0
    calibration_prior_count: float = 30.0
    calibration_max_offset_db: float = 10.0
    gate_chi2: float = 13.8
    gate_resets_after: int = 3
    accuracy_scale: float = 1.0
    noise_level_reference: float = 0.75
    mobility_process_noise: dict[str, float] = field(
        default_factory=lambda: {"stationary": 0.002, "parked": 0.01, "roaming": 0.25}
    )
    default_mobility: str = "parked"
    moving_speed_mps: float = 0.35
