"""Wires sources (BLE, LLRP) through filter, aggregation and batching into the spool, and runs
the uploader and heartbeat. The event loop never blocks on disk or network: spool writes and
HTTP calls run in worker threads."""

import asyncio
import contextlib
import logging
import signal
import socket
import threading
import time

from scanners import __version__, tagids
from scanners.config import AgentConfig
from scanners.edge import AdvertisementProcessor, Aggregator, Batcher
from scanners.readings import EnvironmentReading, RssiReading, iso_ms
from scanners.rfid import RfidReader, TagRead
from scanners.spool import Spool, SpoolFull
from scanners.uploader import HttpClient, Uploader

log = logging.getLogger(__name__)

TICK_S = 0.1


class Agent:
    def __init__(self, config: AgentConfig, rfid_reader: RfidReader | None = None):
        self.config = config
        self.tag_filter = config.tag_filter()
        if self.tag_filter.is_empty:
            log.warning("no tag filters configured: nothing will be uploaded (privacy default)")
        self.started_monotonic = time.monotonic()
        self.spool = Spool(config.spool.path, config.spool.max_bytes)
        #: Readings dropped because the spool's disk was full (kept in memory: the disk is full).
        self.dropped_disk_full: dict[str, int] = {}
        self.processor = AdvertisementProcessor(
            self.tag_filter,
            config.sensors.serials,
            config.sensors.environment_interval_s,
        )
        self.aggregator = (
            Aggregator(config.aggregation.interval_ms / 1000, config.aggregation.statistic)
            if config.aggregation.enabled
            else None
        )
        batch_interval = config.batching.interval_ms / 1000
        self.batchers = {
            "rssi": Batcher(batch_interval, config.batching.max_readings, time.monotonic),
            "environment": Batcher(batch_interval, config.batching.max_readings, time.monotonic),
        }
        self.client = HttpClient(
            config.server.url,
            config.read_token,
            ca_bundle=config.server.ca_bundle,
            tls_verify=config.server.tls_verify,
            timeout_s=config.server.timeout_s,
        )
        self.uploader = Uploader(
            self.spool,
            self.client,
            backoff_base_s=config.upload.backoff_base_s,
            backoff_max_s=config.upload.backoff_max_s,
            retry_after_max_s=config.upload.retry_after_max_s,
            max_upload_readings=config.upload.max_readings,
            max_upload_bytes=config.upload.max_bytes,
        )
        self.rfid_reader = rfid_reader
        self.ble_source = None
        self.rfid_filtered_out = 0
        self.rfid_without_rssi = 0
        self._stop_uploader = threading.Event()
        self._pending: list[tuple[str, list]] = []

    def on_advertisement(self, address, rssi, manufacturer_data, service_data) -> None:
        rssi_readings, environment = self.processor.handle(
            address, rssi, manufacturer_data, service_data
        )
        for reading in rssi_readings:
            self.add_rssi(reading)
        for reading in environment:
            self.add_environment(reading)

    def on_tag_read(self, read: TagRead) -> None:
        tag = tagids.rfid_id(read.epc)
        if not self.tag_filter.allows(tag):
            self.rfid_filtered_out += 1
            return
        if read.rssi is None:
            self.rfid_without_rssi += 1
            return
        self.add_rssi(RssiReading(tag, read.rssi, read.ts))

    def add_rssi(self, reading: RssiReading) -> None:
        if self.aggregator is None:
            self._add_to_batch("rssi", reading)
            return
        for aggregate in self.aggregator.add(reading):
            self._add_to_batch("rssi", aggregate)

    def add_environment(self, reading: EnvironmentReading) -> None:
        self._add_to_batch("environment", reading)

    def _add_to_batch(self, kind: str, reading) -> None:
        full = self.batchers[kind].add(reading)
        if full:
            self._pending.append((kind, full))

    def _serialize(self, kind: str, readings: list) -> list[dict]:
        if kind == "rssi":
            return [r.to_json(self.config.aggregation.include_stats) for r in readings]
        return [r.to_json() for r in readings]

    async def _store(self, kind: str, readings: list) -> None:
        try:
            await asyncio.to_thread(self.spool.put, kind, self._serialize(kind, readings))
        except SpoolFull as exc:
            # A full disk must not stop the agent: what is spooled keeps uploading.
            self.dropped_disk_full[kind] = self.dropped_disk_full.get(kind, 0) + len(readings)
            log.critical("dropped a %s batch of %d readings: %s", kind, len(readings), exc)
        self.uploader.wake.set()

    def collect_due(self, final: bool = False) -> list[tuple[str, list]]:
        """Batches ready for the spool: full ones, timed-out ones, and on shutdown everything."""
        if self.aggregator is not None:
            closing = self.aggregator.flush() if final else self.aggregator.flush_due(time.time())
            for aggregate in closing:
                self._add_to_batch("rssi", aggregate)
        ready, self._pending = self._pending, []
        for kind, batcher in self.batchers.items():
            batch = batcher.take() if final else batcher.due()
            if batch:
                ready.append((kind, batch))
        return ready

    async def _flush_loop(self) -> None:
        while True:
            for kind, readings in self.collect_due():
                await self._store(kind, readings)
            await asyncio.sleep(TICK_S)

    def heartbeat_body(self) -> dict:
        depth = self.spool.depth()
        counters = self.spool.counters()
        sources = {}
        if self.ble_source is not None:
            sources["ble"] = self.ble_source.status
        if self.rfid_reader is not None:
            sources["rfid"] = self.rfid_reader.status
        stats = self.processor.stats
        last_success = self.uploader.last_success_ts
        return {
            "agent_version": __version__,
            "hostname": socket.gethostname(),
            "ts": iso_ms(time.time()),
            "uptime_s": round(time.monotonic() - self.started_monotonic, 1),
            "spool_depth": depth.readings,
            "spool_batches": depth.batches,
            "spool_bytes": depth.bytes,
            "dropped_evicted": counters.get("evicted_readings_rssi", 0)
            + counters.get("evicted_readings_environment", 0),
            "dropped_poison": counters.get("poison_readings", 0),
            "rejected_by_server": counters.get("rejected_readings", 0),
            "uploaded_readings": counters.get("uploaded_readings", 0),
            "malformed_frames": stats.frames.malformed_total,
            "filtered_out": stats.filtered_out + self.rfid_filtered_out,
            "last_upload_ok": iso_ms(last_success) if last_success else None,
            "last_error": self.uploader.last_error,
            "sources": sources,
        }

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.to_thread(self.uploader.send_heartbeat, self.heartbeat_body())
            await asyncio.sleep(self.config.heartbeat.interval_s)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until `stop` is set (or SIGTERM/SIGINT), then spool what is buffered and exit."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, stop.set)
        uploader_thread = threading.Thread(
            target=self.uploader.run, args=(self._stop_uploader,), name="uploader", daemon=True
        )
        uploader_thread.start()
        tasks = [
            asyncio.create_task(self._flush_loop(), name="flush"),
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
        ]
        if self.config.ble.enabled:
            from scanners.ble import BleSource

            self.ble_source = BleSource(self.config.ble, self.tag_filter, self.on_advertisement)
            tasks.append(asyncio.create_task(self.ble_source.run(), name="ble"))
        if self.rfid_reader is None and self.config.rfid.enabled:
            from scanners.llrp import LlrpReader

            rfid = self.config.rfid
            self.rfid_reader = LlrpReader(
                rfid.host,
                rfid.port,
                rfid.antennas,
                rfid.keepalive_s,
                rfid.report_every_n_tags,
                rfid.reconnect_max_s,
            )
        if self.rfid_reader is not None:
            tasks.append(asyncio.create_task(self.rfid_reader.run(self.on_tag_read), name="rfid"))
        log.info("wardwise scanner agent %s started", __version__)
        stopped = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopped and task.exception() is not None:
                    raise task.exception()
        finally:
            stopped.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for kind, readings in self.collect_due(final=True):
                try:
                    self.spool.put(kind, self._serialize(kind, readings))
                except SpoolFull as exc:
                    log.critical("dropped a %s batch at shutdown: %s", kind, exc)
            self._stop_uploader.set()
            self.uploader.wake.set()
            await asyncio.to_thread(uploader_thread.join, self.config.server.timeout_s + 5)
            self.spool.close()
            log.info("wardwise scanner agent stopped")
