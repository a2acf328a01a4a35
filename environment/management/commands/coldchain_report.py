import json
from datetime import datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from environment.models import Sensor
from environment.reports import build_report, report_csv, report_text


def parse_moment(value: str, *, end: bool) -> datetime:
    """A date (a whole day, in TIME_ZONE: --to is inclusive) or an ISO 8601 date-time."""
    try:
        if len(value) == 10:
            day = datetime.strptime(value, "%Y-%m-%d").date()
            if end:
                day += timedelta(days=1)
            return timezone.make_aware(datetime.combine(day, time.min))
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD) or ISO 8601 time") from exc
    return moment if moment.tzinfo else timezone.make_aware(moment)


class Command(BaseCommand):
    help = "Write the cold-chain compliance report of one sensor for a period (text, csv or json)."

    def add_arguments(self, parser):
        parser.add_argument("--sensor", required=True, help="Sensor serial.")
        parser.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD or ISO time.")
        parser.add_argument("--to", dest="end", required=True, help="YYYY-MM-DD (inclusive).")
        parser.add_argument("--format", choices=["text", "csv", "json"], default="text")

    def handle(self, *args, **options):
        sensor = (
            Sensor.objects.select_related("profile", "zone__floor__building")
            .filter(serial=options["sensor"])
            .first()
        )
        if sensor is None:
            raise CommandError(f"no sensor with serial {options['sensor']!r}")
        start = parse_moment(options["start"], end=False)
        end = parse_moment(options["end"], end=True)
        if end <= start:
            raise CommandError("--to must be after --from")
        report = build_report(sensor, start, end)
        if options["format"] == "json":
            self.stdout.write(json.dumps(report, indent=2))
        elif options["format"] == "csv":
            self.stdout.write(report_csv(report), ending="")
        else:
            self.stdout.write(report_text(report), ending="")
