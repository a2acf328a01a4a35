from django.core.management.base import BaseCommand, CommandError

from hospital.site_loader import load_site_document
from hospital.sitefile import SiteFileError, read_site_file


class Command(BaseCommand):
    help = "Load a site description file (JSON or YAML, CONTRACT.md section 1); idempotent."

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path to the site file (.json, .yaml or .yml).")

    def handle(self, *args, **options):
        try:
            report = load_site_document(read_site_file(options["file"]))
        except SiteFileError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Loaded {options['file']}: {report.summary()}")
