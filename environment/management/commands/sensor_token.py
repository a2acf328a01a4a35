from django.core.management.base import BaseCommand, CommandError

from environment.models import Sensor
from hospital.devices import issue_token, revoke_tokens


class Command(BaseCommand):
    help = (
        "Print a new device token for the sensor with this serial, revoking its old one "
        "(only the token goes to stdout). --revoke only revokes."
    )

    def add_arguments(self, parser):
        parser.add_argument("serial")
        parser.add_argument("--revoke", action="store_true", help="Revoke without issuing.")

    def handle(self, *args, **options):
        sensor = Sensor.objects.filter(serial=options["serial"]).first()
        if sensor is None:
            raise CommandError(f"no sensor with serial {options['serial']!r}")
        if options["revoke"]:
            count = revoke_tokens(sensor=sensor)
            self.stderr.write(f"revoked {count} token(s) of {sensor.serial}")
            return
        self.stdout.write(issue_token(sensor=sensor))
