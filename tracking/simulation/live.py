"""A simulated hospital that talks to a running Wardwise server like real gateways do.

Every second of wall time the radio simulator advances one advertising interval, and each
scanner's readings are POSTed to the ingestion API with that scanner's own device token, exactly
as the scanner agent would. Environmental sensors (environment.simulation), when given, post their
readings as they fall due with each sensor's own token, as a Wi-Fi fridge probe would. Used by
`manage.py demo` and `manage.py simulate`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from environment.simulation import SensorSimulator
from tracking.simulation.radio import RadioConfig, RadioSimulator

log = logging.getLogger(__name__)
RSSI_PATH = "/api/v1/readings/rssi/"
ENVIRONMENT_PATH = "/api/v1/readings/environment/"


class LiveFeed:
    def __init__(
        self,
        document: dict[str, Any],
        base_url: str,
        tokens: dict[str, str],
        *,
        seed: int = 0,
        config: RadioConfig | None = None,
        timeout_s: float = 10.0,
        sensors: SensorSimulator | None = None,
        sensor_tokens: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"server URL must be http(s)://..., not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.timeout_s = timeout_s
        self.clock = clock
        self.simulator = RadioSimulator(document, config, seed=seed, start_ts=clock())
        self.sensors = sensors
        self.sensor_tokens = sensor_tokens or {}
        self.sent = 0
        self.failed_batches = 0
        self.sensor_readings_sent = 0
        self.skipped_intervals = 0

    def post(self, serial: str, readings: list) -> int:
        return self._post(
            RSSI_PATH,
            self.tokens[serial],
            {
                "batch": f"sim-{serial}-{readings[0].ts:.3f}",
                "readings": [{"tag": r.tag, "rssi": r.rssi, "ts": r.ts} for r in readings],
            },
        )

    def post_sensor(self, serial: str, readings: list[dict]) -> int:
        return self._post(
            ENVIRONMENT_PATH,
            self.sensor_tokens[serial],
            {"batch": f"sim-{serial}-{readings[0]['ts']:.3f}", "readings": readings},
        )

    def _post(self, path: str, token: str, document: dict) -> int:
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(document).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Token {token}"},
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # nosec B310
            return response.status

    def step_sensors(self, now: float) -> None:
        """Post every environmental reading due by `now`, one request per sensor."""
        if self.sensors is None:
            return
        by_sensor: dict[str, list[dict]] = defaultdict(list)
        for reading in self.sensors.due(now):
            if reading["sensor"] in self.sensor_tokens:
                by_sensor[reading["sensor"]].append(reading)
        for serial, batch in sorted(by_sensor.items()):
            try:
                self.post_sensor(serial, batch)
                self.sensor_readings_sent += len(batch)
            except (urllib.error.URLError, OSError) as exc:
                self.failed_batches += 1
                log.warning("simulated sensor %s could not post: %s", serial, exc)

    def step(self) -> None:
        _truth, readings = self.simulator.step()
        by_scanner: dict[str, list] = defaultdict(list)
        for reading in readings:
            if reading.scanner in self.tokens:
                by_scanner[reading.scanner].append(reading)
        for serial, batch in sorted(by_scanner.items()):
            try:
                self.post(serial, batch)
                self.sent += len(batch)
            except (urllib.error.URLError, OSError) as exc:
                self.failed_batches += 1
                log.warning("simulated gateway %s could not post: %s", serial, exc)
        self.step_sensors(self.clock())

    def wait_for_server(self, stop: threading.Event, timeout_s: float = 60.0) -> bool:
        deadline = time.time() + timeout_s
        while not stop.is_set() and time.time() < deadline:
            try:
                with urllib.request.urlopen(self.base_url + "/healthz/", timeout=2) as response:  # nosec B310
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                stop.wait(0.5)
        return False

    def run(self, stop: threading.Event, duration_s: float | None = None) -> None:
        """Advance in step with the wall clock until `stop` is set or `duration_s` has passed."""
        if not self.wait_for_server(stop):
            log.error("no server answered at %s; the simulated gateways give up", self.base_url)
            return
        self.simulator.now = self.clock()
        if self.sensors is not None:
            self.sensors.restart(self.simulator.now)
        interval = self.simulator.config.advert_interval_s
        started = self.clock()
        while not stop.is_set():
            if duration_s is not None and self.clock() - started >= duration_s:
                return
            self.step()
            self._keep_up(interval)
            wait = self.simulator.now - self.clock()
            if wait > 0:
                stop.wait(min(wait, interval))

    def _keep_up(self, interval: float) -> None:
        """A step whose posting took longer than the interval it simulated (a busy demo server
        answers dozens of gateways one after another) would leave the simulated clock ever
        further behind the wall clock: readings stamped minutes ago, assets turning `missing`.
        A live feed stays live instead: the intervals it could not post in time are skipped,
        as if those advertisements were lost."""
        behind = self.clock() - self.simulator.now
        if behind < interval:
            return
        skipped = int(behind // interval)
        if not self.skipped_intervals:
            log.warning(
                "the simulated gateways cannot post in real time; skipping advertising "
                "intervals to stay live (counted in skipped_intervals)"
            )
        self.skipped_intervals += skipped
        self.simulator.now += skipped * interval
