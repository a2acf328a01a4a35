"""`python manage.py mqtt_bridge`: run the MQTT gateway bridge until stopped (docs/mqtt.md)."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from integrations.bridge import Bridge, BridgeConfig

STATS_EVERY_S = 60.0


class Command(BaseCommand):
    help = "Subscribe to the gateways' MQTT topics and feed their readings to the pipeline."

    def add_arguments(self, parser):
        parser.add_argument(
            "--topic",
            action="append",
            dest="topics",
            help="Topic filter to subscribe to (repeatable); default: MQTT_TOPICS.",
        )

    def handle(self, *args, **options):
        try:
            config = BridgeConfig.from_settings()
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if options["topics"]:
            config.topics = options["topics"]
        bridge = Bridge(config)
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        bridge.start()
        self.stderr.write(
            f"mqtt bridge: {config.host}:{config.port} topics {', '.join(config.topics)}"
        )
        while not stop.wait(STATS_EVERY_S):
            self.stderr.write(f"mqtt bridge: {dict(bridge.stats)}")
        bridge.stop()
        self.stderr.write(f"mqtt bridge stopped: {dict(bridge.stats)}")
