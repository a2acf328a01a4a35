"""The device application (hospital.device_wsgi), what gunicorn serves to gateways and sensors:
the three device endpoints answer exactly as through the whole site, every other path is a JSON
404, the security headers stay, and a trusted token's check and rate limit are one Redis round
trip that still refuses a revoked token at once and a device over its rate with 429."""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import time
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.models import Alert
from environment.models import EnvironmentReading
from hospital import devices, observability
from hospital.device_wsgi import DeviceHandler
from hospital.device_wsgi import application as device_app
from hospital.models import DeviceToken
from hospital.wsgi import application as full_app
from tests.coldchain import iso, minutes_ago
from tests.factories import ColdChainSensorFactory, ScannerFactory
from tests.ratelimit import next_window
from tracking import bus
from tracking.views import RssiIngestView

RSSI = "/api/v1/readings/rssi/"
ENVIRONMENT = "/api/v1/readings/environment/"
HEARTBEAT = "/api/v1/scanners/heartbeat/"
#: Where gunicorn puts the client's socket in the WSGI environ.
SOCKET = "gunicorn.socket"
TAG = "ibeacon:f7826da6-4fa2-4e98-8024-bc5b71e0893e:9:1"
#: Headers a device may act on or that protect it; the two applications must agree on them.
COMPARED_HEADERS = (
    "Content-Type",
    "Content-Length",
    "Retry-After",
    "WWW-Authenticate",
    "Allow",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
    "Permissions-Policy",
    "Content-Security-Policy",
)

pytestmark = pytest.mark.django_db


@dataclass
class Answer:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""

    def json(self):
        return json.loads(self.content)

    def compared(self) -> tuple:
        headers = {name: self.headers.get(name) for name in COMPARED_HEADERS}
        return self.status_code, headers, self.content


def call(application, method: str, path: str, body=b"", token=None, **extra) -> Answer:
    """One request as gunicorn makes it (the response read and closed), with the database
    connection kept for the test's transaction as Django's test client does."""
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = f"Token {token}"
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    environ = (
        RequestFactory()
        .generic(method, path, data, content_type="application/json", **extra)
        .environ
    )
    started: list = []
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = application(environ, lambda status, headers: started.append((status, headers)))
        try:
            content = b"".join(response)
        finally:
            response.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    status, headers = started[0]
    return Answer(int(status.split()[0]), dict(headers), content)


def both(method: str, path: str, body=b"", token=None, **extra) -> tuple[Answer, Answer]:
    """The same request through each application; a callable body is made afresh for each (so
    stored readings are not duplicates of the other's)."""
    return tuple(
        call(app, method, path, body() if callable(body) else body, token, **extra)
        for app in (device_app, full_app)
    )


@pytest.fixture(autouse=True)
def _setup(redis_bus, settings, monkeypatch):
    monkeypatch.setattr("tracking.tasks.queue_claimed", lambda shard: None)
    settings.WARDWISE = {**settings.WARDWISE, "DEVICE_RATE_PER_S": 1_000_000}


@pytest.fixture
def gateway():
    scanner = ScannerFactory(serial="gw-1")
    scanner.token = devices.issue_token(scanner=scanner)
    return scanner


@pytest.fixture
def fridge():
    sensor = ColdChainSensorFactory(serial="fridge-pharm-2")
    sensor.token = devices.issue_token(sensor=sensor)
    return sensor


def readings(count: int) -> list[dict]:
    start = time.time() - 30
    return [{"tag": TAG, "rssi": -60 - i % 7, "ts": start + i * 0.1} for i in range(count)]


def test_the_three_endpoints_answer_as_through_the_whole_site(gateway, fridge):
    minute = itertools.count(3)

    def fresh():
        return {"readings": [reading(fridge, next(minute), 4.5)]}

    cases = [
        (RSSI, {"readings": readings(5)}, gateway.token, 202),
        (RSSI, {"readings": [*readings(2), {"tag": TAG, "rssi": 99, "ts": 1}]}, gateway.token, 202),
        (RSSI, "{not json", gateway.token, 400),
        (RSSI, {"readings": "many"}, gateway.token, 400),
        (RSSI, {"readings": readings(1)}, "ww_nothing_here", 401),
        (RSSI, {"readings": readings(1)}, None, 401),
        (RSSI, {"readings": readings(1)}, fridge.token, 403),
        (HEARTBEAT, {"agent_version": "1.2", "uptime_s": 5, "spool_depth": 0}, gateway.token, 204),
        (HEARTBEAT, {"uptime_s": -1}, gateway.token, 400),
        (
            ENVIRONMENT,
            fresh,
            fridge.token,
            202,
        ),
        (ENVIRONMENT, {"readings": [{"sensor": fridge.serial}]}, fridge.token, 202),
        (ENVIRONMENT, [], fridge.token, 400),
        (ENVIRONMENT, {"readings": []}, "ww_nothing_here", 401),
    ]
    for path, body, token, status in cases:
        device, full = both("POST", path, body, token)
        assert device.status_code == status, (path, body, device.content)
        assert device.compared() == full.compared(), (path, body)
    device, full = both("GET", RSSI, token=gateway.token)
    assert device.status_code == 405
    assert device.compared() == full.compared()


def test_a_body_over_the_limit_is_refused_alike(gateway, settings):
    settings.WARDWISE = {**settings.WARDWISE, "MAX_BODY_BYTES": 100}
    device, full = both("POST", RSSI, {"readings": readings(10)}, gateway.token)
    assert device.status_code == 400
    assert "larger than 100 bytes" in device.json()["detail"]
    assert device.compared() == full.compared()


def reading(sensor, minutes: float, temperature: float) -> dict:
    return {"sensor": sensor.serial, "ts": iso(minutes_ago(minutes)), "temperature_c": temperature}


@pytest.mark.parametrize("application", [device_app, full_app], ids=["device", "full"])
def test_a_device_over_its_rate_gets_429_with_retry_after(gateway, settings, application):
    settings.WARDWISE = {**settings.WARDWISE, "DEVICE_RATE_PER_S": 2}
    for _attempt in range(3):  # the limit is per clock second: three tries in one window
        window = next_window()
        answers = [
            call(application, "POST", HEARTBEAT, {"spool_depth": 0}, gateway.token)
            for _ in range(3)
        ]
        if int(time.time()) == window:
            break
    assert [a.status_code for a in answers] == [204, 204, 429]
    limited = answers[-1]
    assert limited.headers["Retry-After"] == "1"
    assert limited.json() == {"detail": "too many requests from this device; retry after 1 s"}


def test_the_rate_limit_is_per_endpoint_and_device(gateway, settings):
    settings.WARDWISE = {**settings.WARDWISE, "DEVICE_RATE_PER_S": 1}
    other = ScannerFactory(serial="gw-2")
    other.token = devices.issue_token(scanner=other)
    for _attempt in range(3):
        window = next_window()
        codes = [
            call(device_app, "POST", HEARTBEAT, {}, gateway.token).status_code,
            call(device_app, "POST", RSSI, {"readings": readings(1)}, gateway.token).status_code,
            call(device_app, "POST", HEARTBEAT, {}, other.token).status_code,
            call(device_app, "POST", HEARTBEAT, {}, gateway.token).status_code,
        ]
        if int(time.time()) == window:
            break
    assert codes == [204, 202, 204, 429]


def test_redis_down_is_the_same_503_with_retry_after(gateway, settings):
    assert call(device_app, "POST", HEARTBEAT, {}, gateway.token).status_code == 204  # trusted
    bus._client_for.cache_clear()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    try:
        device, full = both("POST", RSSI, {"readings": readings(1)}, gateway.token)
    finally:
        bus._client_for.cache_clear()
    assert device.status_code == 503
    assert device.headers["Retry-After"] == "5"
    assert device.json() == {"detail": "redis is unavailable; retry later", "retry_after_s": 5}
    assert device.compared() == full.compared()


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/admin/",
        "/admin/login/",
        "/accounts/login/",
        "/api/v1/assets/",
        "/api/v1/schema/",
        "/api/v1/health/",
        "/api/v1/sensors/",
        "/metrics",
        "/fhir/Device",
        "/ws/floors/1/",
        "/static/web/js/common.js",
        "/healthz/",
        "/api/v1/readings/rssi",
        "/api/v1/readings/rssi/extra/",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_every_other_path_is_a_json_404(path, method, admin_client):
    answer = call(device_app, method, path, {}, HTTP_COOKIE=_session_cookie(admin_client))
    assert answer.status_code == 404
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["detail"].startswith("not found: this server answers only the device")
    assert "Set-Cookie" not in answer.headers
    assert answer.headers["X-Frame-Options"] == "DENY"


def _session_cookie(admin_client) -> str:
    """A signed-in administrator's session: the device application must not honour it."""
    admin_client.get("/admin/")
    return "; ".join(f"{k}={v.value}" for k, v in admin_client.cookies.items())


def test_answers_carry_the_security_headers(gateway, settings):
    answer = call(device_app, "POST", HEARTBEAT, {}, gateway.token)
    assert answer.status_code == 204
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "same-origin"
    assert answer.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert "camera=()" in answer.headers["Permissions-Policy"]


def test_https_only_in_production_as_the_whole_site(gateway, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    production = DeviceHandler()  # SecurityMiddleware reads its settings when it is built
    plain = call(production, "POST", HEARTBEAT, {}, gateway.token)
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"https://testserver{HEARTBEAT}"
    secure = call(production, "POST", HEARTBEAT, {}, gateway.token, secure=True)
    assert secure.status_code == 204
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_a_revoked_token_is_refused_at_once(gateway):
    assert call(device_app, "POST", HEARTBEAT, {}, gateway.token).status_code == 204  # trusted
    # Another process revokes: the row changes and the shared epoch is bumped.
    DeviceToken.objects.filter(scanner=gateway).update(revoked_at="2026-01-01T00:00:00Z")
    devices.bump_revocation_epoch()
    answer = call(device_app, "POST", RSSI, {"readings": readings(1)}, gateway.token)
    assert answer.status_code == 401
    assert answer.json() == {"detail": "invalid or revoked device token"}
    assert answer.headers["WWW-Authenticate"] == "Token"


class CountingRedis:
    """The shared Redis, counting round trips (pipelines and single commands)."""

    def __init__(self, client):
        self.client = client
        self.round_trips = 0

    def pipeline(self, *args, **kwargs):
        pipe = self.client.pipeline(*args, **kwargs)
        execute = pipe.execute

        def counted(*a, **k):
            self.round_trips += 1
            return execute(*a, **k)

        pipe.execute = counted
        return pipe

    def __getattr__(self, name):
        command = getattr(self.client, name)

        def counted(*a, **k):
            self.round_trips += 1
            return command(*a, **k)

        return counted


def test_a_trusted_tokens_check_and_rate_limit_are_one_round_trip(gateway, monkeypatch, settings):
    settings.WARDWISE = {**settings.WARDWISE, "DEVICE_RATE_PER_S": 1}
    key = RssiIngestView.rate_key
    token, _rate = devices.check_device(gateway.token, key)  # verified from the database
    assert token.scanner == gateway
    counting = CountingRedis(observability.redis_client())
    monkeypatch.setattr(observability, "redis_client", lambda: counting)
    for _attempt in range(3):  # two requests in one clock second
        window = next_window()
        counting.round_trips = 0
        first = devices.check_device(gateway.token, key)
        second = devices.check_device(gateway.token, key)
        if int(time.time()) == window:
            break
    assert counting.round_trips == 2  # one per request
    assert first[0] == second[0] == token
    assert second[1] == devices.Rate(wait=1)  # the second of the second is over the limit
    DeviceToken.objects.filter(scanner=gateway).update(revoked_at="2026-01-01T00:00:00Z")
    devices.bump_revocation_epoch()  # as another process's revocation does
    assert devices.check_device(gateway.token, key) == (None, None)


def test_an_alert_opened_by_an_upload_is_audited_with_the_sensors_address(fridge):
    body = {"readings": [reading(fridge, m, 9.0) for m in range(30, 10, -1)]}
    answer = call(device_app, "POST", ENVIRONMENT, body, fridge.token, REMOTE_ADDR="10.1.2.3")
    assert answer.status_code == 202
    entry = LogEntry.objects.get_for_object(Alert.objects.get()).first()
    assert entry.remote_addr == "10.1.2.3"
    assert entry.actor is None


def test_each_alerting_upload_is_audited_with_its_own_address(fridge):
    other = ColdChainSensorFactory(serial="fridge-ward-1")
    other.token = devices.issue_token(sensor=other)
    for sensor, address in ((fridge, "10.1.2.3"), (other, "10.1.2.4")):
        body = {"readings": [reading(sensor, m, 9.0) for m in range(30, 10, -1)]}
        answer = call(device_app, "POST", ENVIRONMENT, body, sensor.token, REMOTE_ADDR=address)
        assert answer.status_code == 202
        entry = LogEntry.objects.get_for_object(Alert.objects.get(sensor=sensor)).first()
        assert entry.remote_addr == address


def test_an_upload_that_changes_nothing_audited_sets_no_audit_context(fridge, monkeypatch):
    """auditlog's context (a signal hook-up) is entered only where audited rows change."""
    call(device_app, "POST", ENVIRONMENT, {"readings": [reading(fridge, 40, 5.0)]}, fridge.token)

    entered = []
    monkeypatch.setattr(
        "alerts.audit.set_extra_data",
        lambda context_data: entered.append(context_data) or contextlib.nullcontext(),
    )
    body = {"readings": [reading(fridge, 39, 5.0)]}
    assert call(device_app, "POST", ENVIRONMENT, body, fridge.token).status_code == 202
    assert entered == []
    body = {"readings": [reading(fridge, m, 9.0) for m in range(38, 15, -1)]}  # opens an alert
    assert call(device_app, "POST", ENVIRONMENT, body, fridge.token).status_code == 202
    assert len(entered) == 1


def test_the_tokens_last_use_records_the_devices_address_behind_the_proxy(gateway, settings):
    settings.WARDWISE_PROXY_HOPS = 1
    extra = {"HTTP_X_FORWARDED_FOR": "10.9.8.7", "REMOTE_ADDR": "127.0.0.1"}
    assert call(device_app, "POST", HEARTBEAT, {}, gateway.token, **extra).status_code == 204
    row = DeviceToken.objects.get(scanner=gateway, revoked_at__isnull=True)
    assert row.last_used_ip == "10.9.8.7"


def test_an_upload_whose_client_has_gone_is_not_served(fridge):
    """gunicorn queues requests while its threads are busy; a sensor that gave up meanwhile has
    closed its connection. Its upload is answered 503 unprocessed: nothing stored, so no 2xx is
    owed and the sensor's resend is the one that counts."""
    body = {"readings": [reading(fridge, 5, 9.0)]}
    server, client = socket.socketpair()
    with server, client:
        client.close()  # gunicorn has read the request; the client has given up since
        answer = call(device_app, "POST", ENVIRONMENT, body, fridge.token, **{SOCKET: server})
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    assert "nothing was stored" in answer.json()["detail"]
    assert not EnvironmentReading.objects.exists()


def test_an_upload_whose_client_waits_is_served(fridge):
    body = {"readings": [reading(fridge, 5, 5.0)]}
    server, client = socket.socketpair()
    with server, client:
        answer = call(device_app, "POST", ENVIRONMENT, body, fridge.token, **{SOCKET: server})
    assert answer.status_code == 202
    assert EnvironmentReading.objects.count() == 1


def test_a_client_that_sent_more_than_was_read_counts_as_waiting(fridge):
    """Bytes left in the socket (a body gunicorn has not read yet, a pipelined request) are no
    end of stream: the upload is served even if the client closes after them."""
    body = {"readings": [reading(fridge, 5, 5.0)]}
    server, client = socket.socketpair()
    with server, client:
        client.sendall(b"{")
        client.close()
        answer = call(device_app, "POST", ENVIRONMENT, body, fridge.token, **{SOCKET: server})
    assert answer.status_code == 202


def test_other_device_endpoints_do_not_check_the_client(gateway):
    server, client = socket.socketpair()
    with server, client:
        client.close()
        answer = call(device_app, "POST", HEARTBEAT, {}, gateway.token, **{SOCKET: server})
    assert answer.status_code == 204


def test_a_tokens_last_use_is_written_at_most_every_five_minutes(gateway, monkeypatch):
    """Each write is a transaction of its own: a device posting every few seconds must not cost
    one a minute in every server process."""
    start = timezone.now()

    def heartbeats_writing_last_use(minutes_later: float) -> int:
        monkeypatch.setattr(
            devices.timezone, "now", lambda: start + timedelta(minutes=minutes_later)
        )
        with CaptureQueriesContext(connection) as queries:
            assert call(device_app, "POST", HEARTBEAT, {}, gateway.token).status_code == 204
        writes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
        return sum("hospital_devicetoken" in sql for sql in writes)

    assert heartbeats_writing_last_use(0) == 1
    assert heartbeats_writing_last_use(2) == 0
    assert heartbeats_writing_last_use(4.9) == 0
    assert heartbeats_writing_last_use(5.1) == 1
    stored = DeviceToken.objects.get(scanner=gateway, revoked_at__isnull=True)
    assert stored.last_used_at == start + timedelta(minutes=5.1)
