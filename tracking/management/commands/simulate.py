import contextlib
import threading
import time

from django.core.management.base import BaseCommand

from environment.models import Sensor
from environment.simulation import Failure, SensorSimulator, SensorSpec, climate_for
from hospital.devices import issue_token
from hospital.site_loader import export_site_document
from tracking.models import Scanner
from tracking.simulation.live import LiveFeed


def make_feed(
    base_url: str, seed: int = 0, *, sensors: bool = True, failure: Failure | None = None
) -> LiveFeed:
    """Simulated gateways for every scanner of the loaded site and, with `sensors`, simulated
    probes for every active environmental sensor (each device gets a fresh token); `failure`
    makes one of the sensors' units drift out of range."""
    tokens = {scanner.serial: issue_token(scanner=scanner) for scanner in Scanner.objects.all()}
    simulator, sensor_tokens = None, {}
    if sensors:
        active = list(Sensor.objects.filter(is_active=True).select_related("profile"))
        sensor_tokens = {sensor.serial: issue_token(sensor=sensor) for sensor in active}
        simulator = SensorSimulator(
            [
                SensorSpec(
                    s.serial, climate_for(s.kind, s.profile.slug), float(s.expected_interval_s)
                )
                for s in active
            ],
            start_ts=time.time(),
            seed=seed,
            failure=failure,
        )
    return LiveFeed(
        export_site_document(),
        base_url,
        tokens,
        seed=seed,
        sensors=simulator,
        sensor_tokens=sensor_tokens,
    )


def start_feed(
    base_url: str, seed: int = 0, *, sensors: bool = True, failure: Failure | None = None
) -> threading.Event:
    """Run the simulated gateways and sensors in a background thread; set the returned event to
    stop."""
    feed = make_feed(base_url, seed, sensors=sensors, failure=failure)
    stop = threading.Event()
    threading.Thread(target=feed.run, args=(stop,), name="simulated-gateways", daemon=True).start()
    return stop


def failure_from_options(options) -> Failure | None:
    if not options["failing_sensor"]:
        return None
    return Failure(
        options["failing_sensor"],
        start_after_s=options["fail_after"],
        repair_after_s=options["repair_after"],
    )


def add_failure_arguments(parser, *, default_sensor: str = "") -> None:
    parser.add_argument(
        "--failing-sensor",
        default=default_sensor,
        help="Serial of the sensor whose unit stops cooling ('' for none)",
    )
    parser.add_argument(
        "--fail-after", type=float, default=20.0, help="Seconds in before it starts to warm"
    )
    parser.add_argument(
        "--repair-after",
        type=float,
        default=300.0,
        help="Seconds after the failure began until the unit is repaired and cools back",
    )


class Command(BaseCommand):
    help = (
        "Drive a running server with the loaded site's simulated gateways and environmental "
        "sensors (rotates every device token: for test and demo sites only)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--duration", type=float, default=None, help="Seconds; default: forever"
        )
        parser.add_argument(
            "--no-sensors", action="store_true", help="Only the gateways, no fridge probes"
        )
        add_failure_arguments(parser)

    def handle(self, *args, **options):
        feed = make_feed(
            options["url"],
            options["seed"],
            sensors=not options["no_sensors"],
            failure=failure_from_options(options),
        )
        self.stderr.write(
            f"simulating {len(feed.tokens)} gateways and {len(feed.sensor_tokens)} sensors "
            f"against {options['url']}"
        )
        with contextlib.suppress(KeyboardInterrupt):
            feed.run(threading.Event(), options["duration"])
        self.stderr.write(
            f"sent {feed.sent} readings and {feed.sensor_readings_sent} sensor readings; "
            f"{feed.failed_batches} batches failed; {feed.skipped_intervals} advertising "
            "intervals skipped to keep up with the wall clock"
        )
