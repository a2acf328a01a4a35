"""`python manage.py utilisation_report [--start D] [--end D] [--format csv|json]`: hours in
use, idle and cleaning per asset type and department (integrations.utilisation) to stdout."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from integrations import utilisation
from integrations.views import period


class Command(BaseCommand):
    help = "Utilisation per asset type and department over a period (default: the last 30 days)."

    def add_arguments(self, parser):
        parser.add_argument("--start", help="ISO 8601 date or date-time (default: end - 30 days)")
        parser.add_argument("--end", help="ISO 8601 date or date-time (default: now)")
        parser.add_argument("--format", choices=["csv", "json"], default="csv")

    def handle(self, *args, start, end, format, **options):
        try:
            first, last = period(start, end)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        rows = [row.as_dict() for row in utilisation.utilisation(first, last)]
        if format == "json":
            document = {"start": first.isoformat(), "end": last.isoformat(), "rows": rows}
            self.stdout.write(json.dumps(document, indent=2))
        else:
            self.stdout.write(utilisation.as_csv(rows), ending="")
