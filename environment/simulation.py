"""Simulated environmental sensors for the demo hospital and the benchmark, in plain Python (no
Django), so the same model drives the live demo, the tests and the load generator.

Each sensor reports every `interval_s` (at its own phase) what a real probe in that kind of unit
would: a temperature around the unit's set point with compressor cycling (a slow rise while the
compressor rests, a faster pull-down while it runs), door openings (the air warms while the door
is open and recovers after it closes), measurement noise at 0.1 °C resolution, its battery and the
door state. One sensor may be given a `Failure`: a few minutes in, its unit stops cooling and
drifts out of range, then it is "repaired" and cools back down, which is what makes the demo's
alert open, go critical and resolve on its own.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Climate:
    """How a kind of unit behaves when it works."""

    setpoint_c: float
    cycle_amplitude_c: float
    cycle_period_s: float
    noise_c: float = 0.05
    door_opens_per_hour: float = 0.0
    door_open_s: tuple[float, float] = (10.0, 40.0)
    door_warming_c_per_min: float = 0.0
    door_recovery_s: float = 180.0


#: Per sensor kind (environment.models.SensorKind values). Fridges hold 4-5 °C, as the CDC toolkit
#: recommends aiming for the middle of 2-8 °C; freezers about -20 °C; blood banks about 4 °C.
CLIMATES: dict[str, Climate] = {
    "refrigerator": Climate(4.5, 0.5, 1200.0, 0.05, 4.0, (10.0, 40.0), 1.5),
    "freezer": Climate(-20.0, 1.0, 2400.0, 0.1, 1.0, (10.0, 30.0), 3.0),
    "ultra-low-freezer": Climate(-75.0, 1.5, 3600.0, 0.2, 0.5, (10.0, 30.0), 4.0),
    "blood-bank": Climate(4.0, 0.3, 900.0, 0.05, 3.0, (10.0, 30.0), 1.0),
    "room": Climate(21.0, 0.4, 3600.0, 0.05),
    "incubator": Climate(37.0, 0.2, 600.0, 0.03),
}


def climate_for(kind: str, profile_slug: str = "") -> str:
    """The behaviour to simulate: a refrigerator held to a blood-bank profile is a blood-bank
    refrigerator (tighter control around 4 °C), whatever its kind says."""
    if profile_slug.startswith("blood-bank"):
        return "blood-bank"
    return kind if kind in CLIMATES else "refrigerator"


#: Share of a compressor cycle spent warming up (the rest is the pull-down).
WARMING_SHARE = 0.7


@dataclass(frozen=True)
class SensorSpec:
    serial: str
    kind: str
    interval_s: float


@dataclass(frozen=True)
class Failure:
    """One unit stops cooling `start_after_s` into the simulation and warms towards `peak_c`;
    `repair_after_s` after the start of the failure it works again and cools back."""

    serial: str
    start_after_s: float = 20.0
    warming_c_per_min: float = 3.0
    peak_c: float = 12.5
    repair_after_s: float = 300.0
    cooling_c_per_min: float = 3.0

    def offset_c(self, elapsed_s: float, setpoint_c: float) -> float:
        """How much warmer than normal the unit is `elapsed_s` into the simulation."""
        since = elapsed_s - self.start_after_s
        if since <= 0:
            return 0.0
        ceiling = max(self.peak_c - setpoint_c, 0.0)

        def warmed(seconds: float) -> float:
            return min(ceiling, self.warming_c_per_min * seconds / 60.0)

        if since <= self.repair_after_s:
            return warmed(since)
        cooled = self.cooling_c_per_min * (since - self.repair_after_s) / 60.0
        return max(0.0, warmed(self.repair_after_s) - cooled)


@dataclass
class _Unit:
    spec: SensorSpec
    climate: Climate
    rng: random.Random
    next_due: float
    cycle_phase_s: float
    battery_pct: float
    doors: list[tuple[float, float]] = field(default_factory=list)
    next_door: float = math.inf


class SensorSimulator:
    """Readings of many sensors in event time: `due(now)` returns every reading whose time has
    come since the last call, oldest first, as dicts in the ingestion format (CONTRACT.md 4)."""

    def __init__(
        self,
        sensors: list[SensorSpec],
        *,
        start_ts: float,
        seed: int = 0,
        failure: Failure | None = None,
    ):
        self.start_ts = start_ts
        self.failure = failure
        self.units: dict[str, _Unit] = {}
        for spec in sorted(sensors, key=lambda s: s.serial):
            rng = random.Random(f"{seed}:{spec.serial}")
            climate = CLIMATES.get(spec.kind, CLIMATES["refrigerator"])
            unit = _Unit(
                spec=spec,
                climate=climate,
                rng=rng,
                next_due=start_ts + rng.uniform(0.0, spec.interval_s),
                cycle_phase_s=rng.uniform(0.0, climate.cycle_period_s),
                battery_pct=rng.uniform(60.0, 100.0),
            )
            unit.next_door = self._next_door_after(unit, start_ts)
            self.units[spec.serial] = unit

    def restart(self, start_ts: float) -> None:
        """Move the whole schedule so that the simulation starts at `start_ts` (the demo starts
        its clock once the server answers)."""
        shift = start_ts - self.start_ts
        self.start_ts = start_ts
        for unit in self.units.values():
            unit.next_due += shift
            unit.next_door += shift
            unit.doors = [(start + shift, end + shift) for start, end in unit.doors]

    def due(self, now: float) -> list[dict]:
        readings = []
        for unit in self.units.values():
            while unit.next_due <= now:
                readings.append(self._reading(unit, unit.next_due))
                unit.next_due += unit.spec.interval_s
        readings.sort(key=lambda r: (r["ts"], r["sensor"]))
        return readings

    def temperature_c(self, serial: str, ts: float) -> float:
        """The unit's true temperature at `ts` (no noise): what the sensor would measure."""
        unit = self.units[serial]
        climate = unit.climate
        value = climate.setpoint_c + self._cycle(unit, ts) + self._door_warming(unit, ts)
        if self.failure is not None and self.failure.serial == serial:
            value += self.failure.offset_c(ts - self.start_ts, climate.setpoint_c)
        return value

    def _reading(self, unit: _Unit, ts: float) -> dict:
        self._schedule_doors(unit, ts)
        noise = unit.rng.gauss(0.0, unit.climate.noise_c)
        temperature = round(self.temperature_c(unit.spec.serial, ts) + noise, 1)
        days = (ts - self.start_ts) / 86400.0
        return {
            "sensor": unit.spec.serial,
            "ts": round(ts, 3),
            "temperature_c": temperature,
            "battery_pct": max(0, round(unit.battery_pct - 0.5 * days)),
            "door_open": any(start <= ts < end for start, end in unit.doors),
        }

    def _cycle(self, unit: _Unit, ts: float) -> float:
        """Compressor cycling: a sawtooth between -amplitude and +amplitude."""
        climate = unit.climate
        position = ((ts + unit.cycle_phase_s) % climate.cycle_period_s) / climate.cycle_period_s
        if position < WARMING_SHARE:
            shape = -1.0 + 2.0 * position / WARMING_SHARE
        else:
            shape = 1.0 - 2.0 * (position - WARMING_SHARE) / (1.0 - WARMING_SHARE)
        return climate.cycle_amplitude_c * shape

    def _door_warming(self, unit: _Unit, ts: float) -> float:
        rate = unit.climate.door_warming_c_per_min / 60.0
        warming = 0.0
        for start, end in unit.doors:
            if ts < start:
                continue
            if ts < end:
                warming += rate * (ts - start)
            else:
                fading = math.exp(-(ts - end) / unit.climate.door_recovery_s)
                warming += rate * (end - start) * fading
        return warming

    def _next_door_after(self, unit: _Unit, ts: float) -> float:
        per_hour = unit.climate.door_opens_per_hour
        if per_hour <= 0:
            return math.inf
        return ts + unit.rng.expovariate(per_hour / 3600.0)

    def _schedule_doors(self, unit: _Unit, ts: float) -> None:
        """Door openings up to `ts`; old ones whose warming has faded are forgotten."""
        while unit.next_door <= ts:
            low, high = unit.climate.door_open_s
            start = unit.next_door
            end = start + unit.rng.uniform(low, high)
            unit.doors.append((start, end))
            unit.next_door = self._next_door_after(unit, end)
        horizon = 10 * unit.climate.door_recovery_s
        unit.doors = [(s, e) for s, e in unit.doors if ts - e < horizon]
