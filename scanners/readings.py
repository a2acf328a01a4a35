"""The two kinds of reading the agent uploads, in the contract's JSON shapes (sections 3 and 4)."""

from dataclasses import dataclass
from datetime import UTC, datetime


def iso_ms(epoch_s: float) -> str:
    """ISO 8601 UTC with milliseconds, the timestamp form the contract uses."""
    moment = datetime.fromtimestamp(epoch_s, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class RssiReading:
    tag: str
    rssi: float
    ts: float
    count: int = 1
    rssi_max: float | None = None

    def to_json(self, include_stats: bool = False) -> dict:
        body: dict = {"tag": self.tag, "rssi": self.rssi, "ts": iso_ms(self.ts)}
        if include_stats:
            body["count"] = self.count
            body["rssi_max"] = self.rssi if self.rssi_max is None else self.rssi_max
        return body


@dataclass(frozen=True, slots=True)
class EnvironmentReading:
    sensor: str
    ts: float
    temperature_c: float | None = None
    humidity_pct: float | None = None
    battery_pct: int | None = None

    def to_json(self) -> dict:
        body: dict = {"sensor": self.sensor, "ts": iso_ms(self.ts)}
        if self.temperature_c is not None:
            body["temperature_c"] = round(self.temperature_c, 2)
        if self.humidity_pct is not None:
            body["humidity_pct"] = round(self.humidity_pct, 2)
        if self.battery_pct is not None:
            body["battery_pct"] = self.battery_pct
        return body

    def has_measurement(self) -> bool:
        return any(
            value is not None for value in (self.temperature_c, self.humidity_pct, self.battery_pct)
        )
