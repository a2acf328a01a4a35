"""Fixtures and helpers of the cold-chain and alert tests (imported by their conftest files):
a fridge with its own token, a gateway relaying another sensor, people in each role."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from hospital.devices import issue_token
from tests.factories import ColdChainSensorFactory, ScannerFactory, UserFactory

INGEST = "/api/v1/readings/environment/"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


_BASE = [datetime.now(tz=UTC).replace(microsecond=0)]


def minutes_ago(n: float) -> datetime:
    """Relative to a moment fixed per test, so a test never straddles a clock second."""
    return _BASE[0] - timedelta(minutes=n)


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    _BASE[0] = datetime.now(tz=UTC).replace(microsecond=0)
    settings.WARDWISE = {**settings.WARDWISE, "DEVICE_RATE_PER_S": 1_000_000}


@pytest.fixture
def fridge(db):
    sensor = ColdChainSensorFactory(serial="fridge-pharm-2")
    sensor.token = issue_token(sensor=sensor)
    return sensor


@pytest.fixture
def gateway(db):
    scanner = ScannerFactory(serial="gw-1")
    scanner.token = issue_token(scanner=scanner)
    return scanner


@pytest.fixture
def relayed(db, gateway):
    return ColdChainSensorFactory(serial="freezer-lab-1", gateway=gateway)


@pytest.fixture
def post(client):
    def send(token, body, *, raw=False):
        data = body if raw else json.dumps(body)
        return client.post(
            INGEST, data=data, content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}"
        )

    return send


def reading(sensor, moment, temperature=5.0, **extra):
    return {"sensor": sensor.serial, "ts": iso(moment), "temperature_c": temperature, **extra}


@pytest.fixture
def facilities_user(db):
    return UserFactory(username="fac", roles=["facilities"])


@pytest.fixture
def nurse_user(db):
    return UserFactory(username="nurse1", roles=["nurse"])
