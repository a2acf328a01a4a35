"""Turns raw advertisements into filtered readings, and batches/aggregates them for upload."""

import statistics
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from scanners import tagids
from scanners.ble_frames import BeaconFrame, FrameStats, decode_frames
from scanners.privacy import TagFilter
from scanners.readings import EnvironmentReading, RssiReading

# Eddystone TLM frames carry no id; remember which id each address last showed, for this long.
_IDENTITY_MEMORY_S = 600.0
_IDENTITY_MEMORY_SIZE = 4096


@dataclass
class ProcessorStats:
    advertisements: int = 0
    filtered_out: int = 0
    rssi_readings: int = 0
    environment_readings: int = 0
    frames: FrameStats = field(default_factory=FrameStats)


class AdvertisementProcessor:
    """Decode, apply the privacy filter, and emit RSSI and environmental readings.

    Identity preference: a decoded beacon id that passes the filter wins; the advertiser's MAC is
    only used when no beacon id passed and the MAC matches a configured prefix.
    """

    def __init__(
        self,
        tag_filter: TagFilter,
        sensor_serials: Mapping[str, str] | None = None,
        environment_interval_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ):
        self.tag_filter = tag_filter
        self.sensor_serials = dict(sensor_serials or {})
        self.environment_interval_s = environment_interval_s
        self.clock = clock
        self.stats = ProcessorStats()
        self._identity_by_address: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._last_environment: dict[str, float] = {}

    def handle(
        self,
        address: str,
        rssi: int,
        manufacturer_data: Mapping[int, bytes],
        service_data: Mapping[str, bytes],
        ts: float | None = None,
    ) -> tuple[list[RssiReading], list[EnvironmentReading]]:
        now = self.clock() if ts is None else ts
        self.stats.advertisements += 1
        frames = decode_frames(manufacturer_data, service_data, self.stats.frames)
        allows = self.tag_filter.allows
        identities = [frame.tag_id for frame in frames if frame.tag_id and allows(frame.tag_id)]
        if not identities and self.tag_filter.allows_mac(address):
            identities = [tagids.mac_id(address)]
        if identities:
            self._remember(address, identities[0], now)
        elif self._recall(address, now) is None:
            self.stats.filtered_out += 1
            return [], []
        rssi_readings = [RssiReading(tag, rssi, now) for tag in dict.fromkeys(identities)]
        environment = self._environment(frames, address, identities, now)
        self.stats.rssi_readings += len(rssi_readings)
        self.stats.environment_readings += len(environment)
        return rssi_readings, environment

    def _environment(
        self, frames: list[BeaconFrame], address: str, identities: list[str], now: float
    ) -> list[EnvironmentReading]:
        readings = []
        for frame in frames:
            if frame.telemetry is None:
                continue
            if frame.tag_id is not None:
                tag = frame.tag_id if self.tag_filter.allows(frame.tag_id) else None
            else:
                tag = identities[0] if identities else self._recall(address, now)
            if tag is None:
                continue
            sensor = self.sensor_serials.get(tag, tag)
            last = self._last_environment.get(sensor)
            if last is not None and now - last < self.environment_interval_s:
                continue
            reading = EnvironmentReading(
                sensor=sensor,
                ts=now,
                temperature_c=frame.telemetry.temperature_c,
                humidity_pct=frame.telemetry.humidity_pct,
                battery_pct=frame.telemetry.battery_pct,
            )
            if reading.has_measurement():
                self._last_environment[sensor] = now
                readings.append(reading)
        return readings

    def _remember(self, address: str, tag: str, now: float) -> None:
        self._identity_by_address[address] = (tag, now)
        self._identity_by_address.move_to_end(address)
        while len(self._identity_by_address) > _IDENTITY_MEMORY_SIZE:
            self._identity_by_address.popitem(last=False)

    def _recall(self, address: str, now: float) -> str | None:
        entry = self._identity_by_address.get(address)
        if entry is None or now - entry[1] > _IDENTITY_MEMORY_S:
            return None
        return entry[0]


class Aggregator:
    """Collapse each tag's sightings within an interval into one reading (median or max RSSI).

    A beacon advertising at 10 Hz seen by one gateway becomes one reading per interval, which is
    what the localization filter needs anyway.
    """

    def __init__(self, interval_s: float, statistic: str = "median"):
        if statistic not in ("median", "max"):
            raise ValueError("aggregation statistic must be 'median' or 'max'")
        self.interval_s = interval_s
        self.statistic = statistic
        self._window_start: float | None = None
        self._samples: dict[str, list[tuple[float, float]]] = defaultdict(list)

    def add(self, reading: RssiReading) -> list[RssiReading]:
        """Add a sighting; returns the previous window's aggregates when this one closes it."""
        emitted = self.flush_due(reading.ts)
        if self._window_start is None:
            self._window_start = reading.ts - (reading.ts % self.interval_s)
        self._samples[reading.tag].append((reading.ts, reading.rssi))
        return emitted

    def flush_due(self, now: float) -> list[RssiReading]:
        if self._window_start is None or now < self._window_start + self.interval_s:
            return []
        return self.flush()

    def flush(self) -> list[RssiReading]:
        emitted = []
        for tag, samples in self._samples.items():
            values = [rssi for _, rssi in samples]
            value = statistics.median(values) if self.statistic == "median" else max(values)
            emitted.append(
                RssiReading(
                    tag=tag,
                    rssi=round(value, 1),
                    ts=max(ts for ts, _ in samples),
                    count=len(samples),
                    rssi_max=max(values),
                )
            )
        self._samples.clear()
        self._window_start = None
        return emitted


class Batcher:
    """Group readings into upload batches: flush after `interval_s` or at `max_readings`."""

    def __init__(self, interval_s: float, max_readings: int, clock: Callable[[], float]):
        self.interval_s = interval_s
        self.max_readings = max_readings
        self.clock = clock
        self._items: list = []
        self._opened_at: float | None = None

    def add(self, item) -> list | None:
        if not self._items:
            self._opened_at = self.clock()
        self._items.append(item)
        if len(self._items) >= self.max_readings:
            return self.take()
        return None

    def due(self) -> list | None:
        if self._items and self.clock() - (self._opened_at or 0.0) >= self.interval_s:
            return self.take()
        return None

    def take(self) -> list | None:
        if not self._items:
            return None
        items, self._items, self._opened_at = self._items, [], None
        return items

    def __len__(self) -> int:
        return len(self._items)
