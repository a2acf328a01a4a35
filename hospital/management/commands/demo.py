from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from environment.demo import use_demo_timing
from hospital.roles import ALL_ROLES
from tracking.management.commands.simulate import (
    add_failure_arguments,
    failure_from_options,
    start_feed,
)

DEMO_SITE = Path(__file__).resolve().parents[2] / "fixtures" / "demo_site.json"
DEMO_LOGIN_SUFFIX = "-demo-2026"
#: Its unit stops cooling 20 s in: warning alert about 2 min in, critical about 3 min, resolved
#: about 8 min in (docs/cold-chain.md, "The demo").
DEMO_FAILING_SENSOR = "fridge-ward-1"


class Command(BaseCommand):
    help = "Run the demo hospital: migrate, load the demo site, create demo users, serve."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--no-serve", action="store_true", help="Set everything up, then exit.")
        add_failure_arguments(parser, default_sensor=DEMO_FAILING_SENSOR)

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("the demo refuses to run with WARDWISE_PRODUCTION=true")
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("load_site", str(DEMO_SITE))
        self._ensure_demo_users()
        use_demo_timing()
        if options["no_serve"]:
            return
        self.stdout.write(
            f"Demo hospital on http://{options['host']}:{options['port']}/ "
            f"(users: {', '.join(ALL_ROLES)}; password: <user>{DEMO_LOGIN_SUFFIX})"
        )
        start_feed(
            f"http://{options['host']}:{options['port']}", failure=failure_from_options(options)
        )
        call_command("runserver", f"{options['host']}:{options['port']}", use_reloader=False)

    def _ensure_demo_users(self) -> None:
        User = get_user_model()
        for role in ALL_ROLES:
            user, created = User.objects.get_or_create(username=role)
            if created:
                user.set_password(f"{role}{DEMO_LOGIN_SUFFIX}")
                user.is_staff = role in {"biomed", "admin"}
                user.is_superuser = role == "admin"
                user.save()
            user.groups.add(Group.objects.get(name=role))
