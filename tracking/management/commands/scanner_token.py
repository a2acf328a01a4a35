from django.core.management.base import BaseCommand, CommandError

from hospital.devices import issue_token, revoke_tokens
from tracking.models import Scanner


class Command(BaseCommand):
    help = (
        "Print a new device token for the scanner with this serial, revoking its old one "
        "(only the token goes to stdout). --revoke only revokes."
    )

    def add_arguments(self, parser):
        parser.add_argument("serial")
        parser.add_argument("--revoke", action="store_true", help="Revoke without issuing.")

    def handle(self, *args, **options):
        scanner = Scanner.objects.filter(serial=options["serial"]).first()
        if scanner is None:
            raise CommandError(f"no scanner with serial {options['serial']!r}")
        if options["revoke"]:
            count = revoke_tokens(scanner=scanner)
            self.stderr.write(f"revoked {count} token(s) of {scanner.serial}")
            return
        self.stdout.write(issue_token(scanner=scanner))
