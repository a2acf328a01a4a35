"""Cold-chain alert rules, in event time and in plain Python (no Django).

A `SensorMonitor` folds one sensor's readings, in timestamp order, through one small state machine
per alert kind (temperature high/low, humidity high/low, door open too long, low battery, sensor
fault). Each machine turns a run of bad readings into at most one `Incident`: it is raised only
after the condition has lasted the alarm delay (so a door opening rides through), it escalates from
warning to critical in place, and it clears only after the value has been back to normal for the
hysteresis time. Timestamps are epoch seconds; between readings a value is held (sample and hold).

`plan` and `reconcile` are the live side: they decide how to bring a sensor's monitor up to date
when readings arrive late or out of order (replay a window from the stored readings) and which
alert rows to open, update or resolve, so that the alerts after late data are the ones the
complete, ordered data would have given. Offline detection is a separate, receipt-time rule
(`is_offline`): it is about when we last *heard* from a sensor, not about event time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

WARNING = "warning"
CRITICAL = "critical"
SEVERITY_RANK = {None: 0, WARNING: 1, CRITICAL: 2}

TEMPERATURE_HIGH = "temperature-high"
TEMPERATURE_LOW = "temperature-low"
HUMIDITY_HIGH = "humidity-high"
HUMIDITY_LOW = "humidity-low"
DOOR_OPEN = "door-open"
LOW_BATTERY = "low-battery"
SENSOR_FAULT = "sensor-fault"
SENSOR_OFFLINE = "sensor-offline"
EVENT_TIME_KINDS = (
    TEMPERATURE_HIGH,
    TEMPERATURE_LOW,
    HUMIDITY_HIGH,
    HUMIDITY_LOW,
    DOOR_OPEN,
    LOW_BATTERY,
    SENSOR_FAULT,
)
ALL_KINDS = (*EVENT_TIME_KINDS, SENSOR_OFFLINE)
UNITS = {
    TEMPERATURE_HIGH: "°C",
    TEMPERATURE_LOW: "°C",
    HUMIDITY_HIGH: "%",
    HUMIDITY_LOW: "%",
    DOOR_OPEN: "s",
    LOW_BATTERY: "%",
    SENSOR_FAULT: "°C",
    SENSOR_OFFLINE: "s",
}

#: Replays never reach further back than this before the earliest new reading.
MAX_REPLAY_LOOKBACK_S = 48 * 3600


@dataclass(frozen=True)
class Limits:
    """What one sensor is held to: its threshold profile plus the generic sensor-health rules."""

    temperature_min_c: float | None = None
    temperature_max_c: float | None = None
    temperature_critical_min_c: float | None = None
    temperature_critical_max_c: float | None = None
    humidity_min_pct: float | None = None
    humidity_max_pct: float | None = None
    alarm_delay_s: float = 600.0
    clear_hysteresis_s: float = 600.0
    door_open_max_s: float = 300.0
    low_battery_pct: float = 20.0
    critical_battery_pct: float = 10.0
    battery_clear_margin_pct: float = 5.0
    plausible_min_c: float = -100.0
    plausible_max_c: float = 70.0
    max_rate_c_per_min: float = 10.0
    min_jump_c: float = 5.0
    expected_interval_s: float = 300.0
    offline_after_intervals: float = 3.0

    @property
    def horizon_s(self) -> float:
        """How far back a replay must start for every machine to have settled."""
        return (
            max(self.alarm_delay_s, self.door_open_max_s)
            + self.clear_hysteresis_s
            + 2 * self.expected_interval_s
        )


@dataclass(frozen=True)
class Reading:
    ts: float
    temperature_c: float | None = None
    humidity_pct: float | None = None
    battery_pct: float | None = None
    door_open: bool | None = None


@dataclass
class Incident:
    """One alert-worthy episode of one kind: raised, maybe escalated, ended, then resolved."""

    kind: str
    started_at: float
    alarmed_at: float
    severity: str
    peak: float | None
    last: float | None
    ended_at: float | None = None
    resolved_at: float | None = None

    @property
    def active(self) -> bool:
        return self.resolved_at is None


@dataclass
class _Machine:
    """The state of one kind's machine; plain data so a monitor can be saved as JSON."""

    onset: float | None = None
    critical_onset: float | None = None
    pending_peak: float | None = None
    clear_since: float | None = None
    incident: Incident | None = None


def _worst(direction: int, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b) if direction > 0 else min(a, b)


def _beyond(direction: int, value: float, limit: float | None) -> bool:
    if limit is None:
        return False
    return value > limit if direction > 0 else value < limit


def _step(
    machine: _Machine,
    kind: str,
    ts: float,
    level: int,
    value: float | None,
    direction: int,
    delay: float,
    hysteresis: float,
) -> Incident | None:
    """Advance one machine by one observation (level 0 normal, 1 warning, 2 critical).

    Returns the incident when it was raised or changed by this observation."""
    if level > 0:
        machine.clear_since = None
        if machine.onset is None:
            machine.onset = ts
            machine.pending_peak = None
        machine.pending_peak = _worst(direction, machine.pending_peak, value)
        if level == 2:
            if machine.critical_onset is None:
                machine.critical_onset = ts
        else:
            machine.critical_onset = None
        critical = machine.critical_onset is not None and ts - machine.critical_onset >= delay
        severity = CRITICAL if critical else WARNING
        incident = machine.incident
        if incident is None:
            if ts - machine.onset < delay:
                return None
            machine.incident = Incident(
                kind=kind,
                started_at=machine.onset,
                alarmed_at=ts,
                severity=severity,
                peak=machine.pending_peak,
                last=value,
            )
            return machine.incident
        incident.last = value
        incident.peak = _worst(direction, incident.peak, value)
        incident.ended_at = None
        if SEVERITY_RANK[severity] > SEVERITY_RANK[incident.severity]:
            incident.severity = severity
        return incident
    machine.critical_onset = None
    incident = machine.incident
    if incident is None:
        machine.onset = None
        machine.pending_peak = None
        return None
    incident.last = value
    if machine.clear_since is None:
        machine.clear_since = ts
        incident.ended_at = ts
    if ts - machine.clear_since >= hysteresis:
        incident.resolved_at = ts
        machine.incident = None
        machine.onset = None
        machine.pending_peak = None
        machine.clear_since = None
    return incident


class SensorMonitor:
    """All of one sensor's rule machines, fed in event-time order."""

    def __init__(self, limits: Limits, state: dict | None = None):
        self.limits = limits
        self.last_ts: float | None = None
        self.last_temperature: float | None = None
        self.last_temperature_ts: float | None = None
        self.machines = {kind: _Machine() for kind in EVENT_TIME_KINDS}
        if state:
            self._load(state)

    def feed(self, reading: Reading) -> list[Incident]:
        """Apply one reading (newer than every reading before); return copies of the incidents
        it raised or changed."""
        if self.last_ts is not None and reading.ts <= self.last_ts:
            raise ValueError("readings must be fed in increasing ts order")
        self.last_ts = reading.ts
        changed: list[Incident] = []
        lim = self.limits

        def step(kind, level, value, direction, delay, hysteresis):
            incident = _step(
                self.machines[kind], kind, reading.ts, level, value, direction, delay, hysteresis
            )
            if incident is not None:
                changed.append(replace(incident))

        temperature = reading.temperature_c
        if temperature is not None:
            fault = self._implausible(reading.ts, temperature)
            step(SENSOR_FAULT, 1 if fault else 0, temperature, 1, 0.0, lim.clear_hysteresis_s)
            self.last_temperature, self.last_temperature_ts = temperature, reading.ts
            if not fault:
                for kind, direction, warn, crit in (
                    (TEMPERATURE_HIGH, 1, lim.temperature_max_c, lim.temperature_critical_max_c),
                    (TEMPERATURE_LOW, -1, lim.temperature_min_c, lim.temperature_critical_min_c),
                ):
                    level = _level(direction, temperature, warn, crit)
                    step(
                        kind,
                        level,
                        temperature,
                        direction,
                        lim.alarm_delay_s,
                        lim.clear_hysteresis_s,
                    )
        humidity = reading.humidity_pct
        if humidity is not None:
            for kind, direction, warn in (
                (HUMIDITY_HIGH, 1, lim.humidity_max_pct),
                (HUMIDITY_LOW, -1, lim.humidity_min_pct),
            ):
                level = 1 if _beyond(direction, humidity, warn) else 0
                step(kind, level, humidity, direction, lim.alarm_delay_s, lim.clear_hysteresis_s)
        if reading.door_open is not None:
            machine = self.machines[DOOR_OPEN]
            opened = machine.onset if machine.onset is not None else reading.ts
            open_s = reading.ts - opened if reading.door_open else 0.0
            step(DOOR_OPEN, 1 if reading.door_open else 0, open_s, 1, lim.door_open_max_s, 0.0)
        battery = reading.battery_pct
        if battery is not None:
            active = self.machines[LOW_BATTERY].incident is not None
            threshold = lim.low_battery_pct + (lim.battery_clear_margin_pct if active else 0.0)
            level = 2 if battery <= lim.critical_battery_pct else 1 if battery <= threshold else 0
            step(LOW_BATTERY, level, battery, -1, 0.0, 0.0)
        return changed

    def _implausible(self, ts: float, temperature: float) -> bool:
        lim = self.limits
        if not lim.plausible_min_c <= temperature <= lim.plausible_max_c:
            return True
        if self.last_temperature is None or self.last_temperature_ts is None:
            return False
        jump = abs(temperature - self.last_temperature)
        elapsed_min = max(ts - self.last_temperature_ts, 1.0) / 60.0
        return jump >= lim.min_jump_c and jump / elapsed_min > lim.max_rate_c_per_min

    def active_incidents(self) -> list[Incident]:
        return [replace(m.incident) for m in self.machines.values() if m.incident is not None]

    def state(self) -> dict:
        """JSON-ready state; `SensorMonitor(limits, state)` resumes exactly where this left.
        (`dataclasses.asdict` gives the same, at a cost every upload felt: it deep-copies.)"""
        machines = {}
        for kind, machine in self.machines.items():
            data = dict(machine.__dict__)
            if machine.incident is not None:
                data["incident"] = dict(machine.incident.__dict__)
            machines[kind] = data
        return {
            "last_ts": self.last_ts,
            "last_temperature": self.last_temperature,
            "last_temperature_ts": self.last_temperature_ts,
            "machines": machines,
        }

    def _load(self, state: dict) -> None:
        self.last_ts = state.get("last_ts")
        self.last_temperature = state.get("last_temperature")
        self.last_temperature_ts = state.get("last_temperature_ts")
        for kind, data in state.get("machines", {}).items():
            if kind not in self.machines:
                continue
            data = dict(data)
            incident = data.pop("incident", None)
            self.machines[kind] = _Machine(
                **data, incident=Incident(**incident) if incident else None
            )


def _level(direction: int, value: float, warn: float | None, crit: float | None) -> int:
    if _beyond(direction, value, crit):
        return 2
    if _beyond(direction, value, warn):
        return 1
    return 0


def evaluate(readings: Iterable[Reading], limits: Limits) -> list[Incident]:
    """Every incident in a set of readings, in any order (sorted here; repeated ts kept once)."""
    monitor = SensorMonitor(limits)
    incidents: dict[tuple[str, float], Incident] = {}
    last_ts = None
    for reading in sorted(readings, key=lambda r: r.ts):
        if reading.ts == last_ts:
            continue
        last_ts = reading.ts
        for incident in monitor.feed(reading):
            incidents[(incident.kind, incident.started_at)] = incident
    return sorted(incidents.values(), key=lambda i: (i.started_at, i.kind))


def is_offline(last_heard: float | None, now: float, limits: Limits) -> bool:
    """Receipt-time rule: nothing heard from the sensor for `offline_after_intervals` intervals."""
    if last_heard is None:
        return False
    return now - last_heard >= limits.offline_after_intervals * limits.expected_interval_s


# --- bringing a live monitor up to date ------------------------------------------------------


@dataclass(frozen=True)
class AlertView:
    """What `reconcile` needs to know of an existing alert row."""

    id: int
    kind: str
    started_at: float
    ended_at: float | None
    resolved: bool
    automatic: bool = True


@dataclass(frozen=True)
class Action:
    """What to do with alert rows:

    - `open` a new alert for the incident;
    - `update` alert `alert_id` from it (`exact`: late data rewrote the incident, so its severity
      may also go down; otherwise severity only rises);
    - `resolve` it at the incident's `resolved_at`, or `withdraw` it at `at` when late readings
      showed the condition shorter than the alarm delay;
    - `reopen` an automatically resolved alert whose condition late readings showed still going;
    - `settle` an alert resolved by hand while its condition went on: record when it ended."""

    op: str
    incident: Incident | None = None
    alert_id: int | None = None
    at: float | None = None
    exact: bool = False


@dataclass
class Update:
    """The result of bringing a monitor up to date with new readings."""

    state: dict
    incidents: list[Incident] = field(default_factory=list)
    replayed_from: float | None = None


def update_monitor(
    limits: Limits,
    state: dict | None,
    new: list[Reading],
    history: Callable[[float], list[Reading]],
    open_starts: Iterable[float] = (),
) -> Update:
    """Fold newly stored readings into a saved monitor state.

    In-order readings are fed incrementally. A reading at or before the monitor's last ts means the
    past changed: the monitor is rebuilt from `history(start)` (every stored reading with ts >=
    start, the new ones included), starting early enough for every machine to have settled and no
    later than the start of any unresolved incident (`open_starts`)."""
    monitor = SensorMonitor(limits, state)
    new = sorted(new, key=lambda r: r.ts)
    if not new:
        return Update(monitor.state())
    if monitor.last_ts is None or new[0].ts > monitor.last_ts:
        changed: dict[tuple[str, float], Incident] = {}
        last = monitor.last_ts
        for reading in new:
            if last is not None and reading.ts <= last:
                continue
            last = reading.ts
            for incident in monitor.feed(reading):
                changed[(incident.kind, incident.started_at)] = incident
        return Update(monitor.state(), list(changed.values()))
    start = replay_start(new[0].ts, open_starts, limits)
    incidents_by_key: dict[tuple[str, float], Incident] = {}
    fresh = SensorMonitor(limits)
    last = None
    for reading in sorted(history(start), key=lambda r: r.ts):
        if reading.ts == last:
            continue
        last = reading.ts
        for incident in fresh.feed(reading):
            incidents_by_key[(incident.kind, incident.started_at)] = incident
    return Update(fresh.state(), list(incidents_by_key.values()), replayed_from=start)


def replay_start(earliest_new: float, open_starts: Iterable[float], limits: Limits) -> float:
    start = min([earliest_new - limits.horizon_s, *open_starts])
    return max(start, earliest_new - MAX_REPLAY_LOOKBACK_S)


def _overlaps(incident: Incident, alert: AlertView) -> bool:
    incident_end = incident.ended_at if incident.ended_at is not None else math.inf
    if incident.resolved_at is None:
        incident_end = math.inf
    alert_end = alert.ended_at if (alert.resolved and alert.ended_at is not None) else math.inf
    return incident.started_at <= alert_end and alert.started_at <= incident_end


def reconcile(update: Update, alerts: list[AlertView]) -> list[Action]:
    """The alert changes an update calls for.

    An incident belongs to the existing alert of its kind whose period overlaps it (so a replay
    that re-derives an incident, perhaps with a slightly different start, updates the same alert
    instead of raising a second one); otherwise it opens a new alert. Alerts resolved by hand stay
    resolved. After a replay, an alert in the replayed window that no incident backs any more
    (late readings showed the condition shorter than the delay) is withdrawn, unless a person
    resolved it."""
    actions: list[Action] = []
    claimed: set[int] = set()
    for incident in sorted(update.incidents, key=lambda i: (i.started_at, i.kind)):
        match = next(
            (
                a
                for a in alerts
                if a.kind == incident.kind and a.id not in claimed and _overlaps(incident, a)
            ),
            None,
        )
        if match is None:
            actions.append(Action("open", incident))
            continue
        claimed.add(match.id)
        replayed = update.replayed_from is not None
        if match.resolved:
            if replayed and match.automatic and incident.resolved_at is None:
                actions.append(Action("reopen", incident, match.id))
                actions.append(Action("update", incident, match.id, exact=True))
            elif match.ended_at is None and incident.resolved_at is not None:
                actions.append(Action("settle", incident, match.id))
            continue
        actions.append(Action("update", incident, match.id, exact=replayed))
        if incident.resolved_at is not None:
            actions.append(Action("resolve", incident, match.id, incident.resolved_at))
    if update.replayed_from is not None:
        last_ts = update.state.get("last_ts")
        for alert in alerts:
            if alert.id in claimed or alert.kind not in EVENT_TIME_KINDS:
                continue
            if alert.resolved and not alert.automatic:
                continue
            if alert.started_at >= update.replayed_from:
                actions.append(Action("withdraw", None, alert.id, last_ts))
    return actions
