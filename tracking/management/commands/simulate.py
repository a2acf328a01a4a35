import contextlib
import threading

from django.core.management.base import BaseCommand

from hospital.devices import issue_token
from hospital.site_loader import export_site_document
from tracking.models import Scanner
from tracking.simulation.live import LiveFeed


def make_feed(base_url: str, seed: int = 0) -> LiveFeed:
    """Simulated gateways for every scanner of the loaded site (each gets a fresh token)."""
    tokens = {scanner.serial: issue_token(scanner=scanner) for scanner in Scanner.objects.all()}
    return LiveFeed(export_site_document(), base_url, tokens, seed=seed)


def start_feed(base_url: str, seed: int = 0) -> threading.Event:
    """Run the simulated gateways in a background thread; set the returned event to stop."""
    feed = make_feed(base_url, seed)
    stop = threading.Event()
    threading.Thread(target=feed.run, args=(stop,), name="simulated-gateways", daemon=True).start()
    return stop


class Command(BaseCommand):
    help = (
        "Drive a running server with the loaded site's simulated gateways (rotates every "
        "scanner's device token: for test and demo sites only)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--duration", type=float, default=None, help="Seconds; default: forever"
        )

    def handle(self, *args, **options):
        feed = make_feed(options["url"], options["seed"])
        self.stderr.write(f"simulating {len(feed.tokens)} gateways against {options['url']}")
        with contextlib.suppress(KeyboardInterrupt):
            feed.run(threading.Event(), options["duration"])
        self.stderr.write(f"sent {feed.sent} readings; {feed.failed_batches} batches failed")
