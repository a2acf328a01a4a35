"""Fuzzing the API from its own OpenAPI description (schemathesis, in CI): every operation of
`/api/v1/schema/` gets generated inputs, valid and not, as a signed-in superuser (people's
endpoints, with the CSRF token a browser would send) or with a device token (ingestion), and
no input may produce a server error.

Bounded: WARDWISE_FUZZ_EXAMPLES generated cases per operation (default 20, about a minute and a
half for the whole API on the CI machine), derandomized so a failure reproduces.
"""

from __future__ import annotations

import contextlib
import os

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from hospital import devices
from tests.factories import (
    AssetFactory,
    ColdChainSensorFactory,
    FloorFactory,
    ScannerFactory,
    TagFactory,
)

EXAMPLES = int(os.environ.get("WARDWISE_FUZZ_EXAMPLES", "20"))
CALLS = [0]
CSRF = "f" * 32
DEVICE_PATHS = (
    "/api/v1/readings/rssi/",
    "/api/v1/readings/environment/",
    "/api/v1/scanners/heartbeat/",
)


@pytest.fixture
def fuzz_credentials(db, settings, monkeypatch):
    """A superuser's session cookie plus CSRF token, and a gateway's device token; a small site
    so ids and serials in generated paths sometimes exist."""
    settings.WARDWISE = {**settings.WARDWISE, "DEVICE_RATE_PER_S": 1_000_000}
    monkeypatch.setattr("tracking.tasks.queue_claimed", lambda shard: None)
    devices.forget_verified_tokens()
    floor = FloorFactory()
    gateway = ScannerFactory(serial="fuzz-gw", floor=floor)
    ColdChainSensorFactory(serial="fuzz-fridge", gateway=gateway)
    TagFactory(asset=AssetFactory())
    root = User.objects.create_superuser("fuzz-root", password="fuzz-root-password-2026")
    client = Client()
    client.force_login(root)
    session = client.cookies["sessionid"].value
    return {
        "person": {
            "X-Test-Cookie": f"sessionid={session}; csrftoken={CSRF}",
            "X-CSRFToken": CSRF,
        },
        "device": {"Authorization": f"Token {devices.issue_token(scanner=gateway)}"},
    }


def with_test_cookie(app):
    """werkzeug's test client replaces a Cookie header with its own (empty) cookie jar, so the
    session cookie travels as X-Test-Cookie and becomes the Cookie here."""

    def wrapped(environ, start_response):
        cookie = environ.pop("HTTP_X_TEST_COOKIE", None)
        if cookie:
            environ["HTTP_COOKIE"] = cookie
        return app(environ, start_response)

    return wrapped


@pytest.fixture
def api_schema(fuzz_credentials):
    """The schema as the WSGI application serves it. Requests run in the test's own database
    transaction, as with Django's test client: connections are not recycled between them."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi(
            "/api/v1/schema/?format=json",
            with_test_cookie(get_wsgi_application()),
            headers=fuzz_credentials["person"],
        )
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def fuzz_operation(operation, headers: dict) -> None:
    """EXAMPLES valid and invalid inputs for one operation; raises on the first server error
    (hypothesis shrinks it to a minimal input first)."""
    strategy = operation.as_strategy(GenerationMode.POSITIVE)
    with contextlib.suppress(Exception):  # an operation with nothing to negate: valid only
        strategy = strategy | operation.as_strategy(GenerationMode.NEGATIVE)

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        CALLS[0] += 1
        case.call_and_validate(headers=headers, checks=[not_a_server_error])

    run()


def test_no_input_makes_a_server_error(api_schema, fuzz_credentials):
    """schemathesis' own pytest plugin does not run under pytest 9 (it renames nodes through a
    private attribute), so the operations are driven here with its Python API."""
    failures = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        device = operation.path in DEVICE_PATHS
        try:
            fuzz_operation(operation, fuzz_credentials["device" if device else "person"])
        except Exception as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert operations >= 40, f"only {operations} operations in the schema"
    assert CALLS[0] >= operations * min(EXAMPLES, 5), f"only {CALLS[0]} requests were made"
    print(f"fuzzed {operations} operations with {CALLS[0]} requests")
    assert not failures, "\n\n".join(failures)
