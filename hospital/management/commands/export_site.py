import json

import yaml
from django.core.management.base import BaseCommand

from hospital.site_loader import export_site_document


class Command(BaseCommand):
    help = "Write the whole site as a site description file to stdout (JSON unless --format yaml)."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["json", "yaml"], default="json")

    def handle(self, *args, **options):
        document = export_site_document()
        if options["format"] == "yaml":
            self.stdout.write(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
        else:
            self.stdout.write(json.dumps(document, indent=2, ensure_ascii=False))
