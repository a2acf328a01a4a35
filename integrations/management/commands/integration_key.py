"""`python manage.py integration_key NAME --role ROLE`: print a new API key for an integration
client (creating it with a service user in ROLE), revoking its old key. Nothing else goes to
stdout, so the key can be piped into a secret store. `--revoke` revokes without a new key."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from hospital.roles import ALL_ROLES
from integrations.keys import issue_key, revoke_key


class Command(BaseCommand):
    help = "Issue (or revoke) the API key of an integration client (FHIR, reports)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--role", choices=ALL_ROLES, default="nurse")
        parser.add_argument("--revoke", action="store_true")

    def handle(self, *args, name, role, revoke, **options):
        if revoke:
            if not revoke_key(name):
                raise CommandError(f"no active key for {name!r}")
            self.stderr.write(f"revoked the key of {name}")
            return
        self.stdout.write(issue_key(name, role))
