"""The principals the security tests knock with: people in every role (and in none), staff and
not, and the two kinds of device credential."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from hospital.devices import forget_verified_tokens, issue_token
from hospital.roles import ADMIN, BIOMED, FACILITIES, NURSE
from tests.factories import ColdChainSensorFactory, ScannerFactory


@dataclass
class Principal:
    """Who knocks: a person (roles, staff flag), a device token, or nobody."""

    name: str
    roles: tuple[str, ...] = ()
    staff: bool = False
    superuser: bool = False
    token: str = ""
    user: User | None = None
    kind: str = "person"
    _client: Client | None = field(default=None, repr=False, compare=False)

    def client(self) -> Client:
        """One signed-in client per principal and test (sign-outs are never knocked on)."""
        if self._client is None:
            client = Client(HTTP_AUTHORIZATION=f"Token {self.token}") if self.token else Client()
            if self.user is not None:
                client.force_login(self.user)
            self._client = client
        return self._client


def make_person(name: str, *roles: str, staff=False, superuser=False) -> Principal:
    user = User.objects.create(
        username=f"sec-{name}", is_staff=staff or superuser, is_superuser=superuser
    )
    user.groups.set([Group.objects.get(name=role) for role in roles])
    return Principal(name, tuple(roles), staff or superuser, superuser, user=user)


@pytest.fixture
def principals(db, settings) -> dict[str, Principal]:
    """Everyone, by name. Device tokens are real, issued like `manage.py scanner_token`."""
    settings.WARDWISE = {**settings.WARDWISE, "DEVICE_RATE_PER_S": 1_000_000}
    forget_verified_tokens()
    scanner = ScannerFactory(serial="sec-gateway")
    sensor = ColdChainSensorFactory(serial="sec-fridge")
    people = [
        make_person("nobody"),
        make_person("nobody-staff", staff=True),
        make_person("nurse", NURSE),
        make_person("nurse-staff", NURSE, staff=True),
        make_person("biomed", BIOMED),
        make_person("biomed-staff", BIOMED, staff=True),
        make_person("facilities-staff", FACILITIES, staff=True),
        make_person("admin-staff", ADMIN, staff=True),
        make_person("superuser", superuser=True),
    ]
    everyone = {p.name: p for p in people}
    everyone["anonymous"] = Principal("anonymous", kind="anonymous")
    everyone["scanner-token"] = Principal(
        "scanner-token", token=issue_token(scanner=scanner), kind="scanner"
    )
    everyone["sensor-token"] = Principal(
        "sensor-token", token=issue_token(sensor=sensor), kind="sensor"
    )
    return everyone
