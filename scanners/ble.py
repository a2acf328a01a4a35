"""Continuous BLE scanning with bleak, passive where the platform allows it.

bleak is imported lazily so RFID-only gateways do not need it (or a Bluetooth stack).
"""

import asyncio
import logging
import sys
from collections.abc import Callable, Mapping

from scanners.config import BleConfig
from scanners.privacy import TagFilter

log = logging.getLogger(__name__)

AdvertisementCallback = Callable[[str, int, Mapping[int, bytes], Mapping[str, bytes]], None]


def passive_patterns():
    """BlueZ advertisement-monitor patterns for every beacon format the agent decodes.

    Passive scanning on Linux needs these: BlueZ only reports advertisements matching a pattern.
    A plain MAC-prefix tag has no pattern, so MAC filters force active scanning in `auto` mode.
    """
    from bleak.args.bluez import OrPattern
    from bleak.assigned_numbers import AdvertisementDataType as Ad

    return [
        OrPattern(0, Ad.MANUFACTURER_SPECIFIC_DATA, b"\x4c\x00\x02\x15"),
        OrPattern(0, Ad.MANUFACTURER_SPECIFIC_DATA, b"\x99\x04\x05"),
        OrPattern(2, Ad.MANUFACTURER_SPECIFIC_DATA, b"\xbe\xac"),
        OrPattern(0, Ad.SERVICE_DATA_UUID16, b"\xaa\xfe"),
    ]


def choose_mode(config: BleConfig, tag_filter: TagFilter) -> str:
    if config.scanning_mode != "auto":
        return config.scanning_mode
    if tag_filter.mac_prefixes:
        return "active"
    return "passive"


class BleSource:
    """Runs bleak's scanner until cancelled, restarting it if the adapter goes away."""

    def __init__(self, config: BleConfig, tag_filter: TagFilter, on_advertisement):
        self.config = config
        self.tag_filter = tag_filter
        self.on_advertisement: AdvertisementCallback = on_advertisement
        self.status = "stopped"
        self.mode: str | None = None

    def _scanner(self, mode: str):
        from bleak import BleakScanner

        def detection(device, advertisement) -> None:
            self.on_advertisement(
                device.address,
                advertisement.rssi,
                advertisement.manufacturer_data,
                advertisement.service_data,
            )

        kwargs: dict = {}
        if sys.platform.startswith("linux"):
            bluez: dict = {}
            if self.config.adapter:
                bluez["adapter"] = self.config.adapter
            if mode == "passive":
                bluez["or_patterns"] = passive_patterns()
            kwargs["bluez"] = bluez
        return BleakScanner(detection_callback=detection, scanning_mode=mode, **kwargs)

    async def run(self) -> None:
        from bleak.exc import BleakError

        mode = choose_mode(self.config, self.tag_filter)
        failures = 0
        while True:
            try:
                scanner = self._scanner(mode)
                await scanner.start()
            except (BleakError, OSError) as error:
                if mode == "passive" and self.config.scanning_mode == "auto":
                    log.warning("passive BLE scanning unavailable (%s); using active", error)
                    mode = "active"
                    continue
                failures += 1
                self.status = f"error: {error}"
                log.error("BLE scanner failed to start: %s", error)
                await asyncio.sleep(min(60.0, 2.0**failures))
                continue
            self.mode = mode
            self.status = f"scanning ({mode})"
            failures = 0
            log.info("BLE scanning started in %s mode", mode)
            try:
                await asyncio.Event().wait()
            finally:
                self.status = "stopped"
                try:
                    await scanner.stop()
                except (BleakError, OSError) as error:
                    log.debug("BLE scanner stop failed: %s", error)
