"""Access control, enumerated: every URL pattern and every websocket route of the project, every
HTTP method its view answers, knocked on by anonymous visitors, people in the wrong role (or in
none), staff without a managing role, and scanner and sensor device tokens.

The table below is the policy. A URL that is not in it fails the test, so a new endpoint cannot
ship without someone deciding who may use it; a rule that matches nothing fails too, so the
table never drifts from the code. Public URLs are listed with the reason they are public.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client

from hospital.roles import ADMIN, BIOMED, FACILITIES, NURSE
from tests.security.conftest import Principal
from tests.security.urlwalk import Endpoint, endpoints, websocket_routes

CLINICAL = frozenset({NURSE, BIOMED, FACILITIES, ADMIN})
EQUIPMENT = frozenset({BIOMED, ADMIN})
COLD_CHAIN = frozenset({FACILITIES, BIOMED, ADMIN})
CONSOLE = frozenset({FACILITIES, ADMIN})
INFRASTRUCTURE = frozenset({BIOMED, FACILITIES, ADMIN})


@dataclass(frozen=True)
class Rule:
    """Who may use a URL. `roles`: people with one of these roles (superusers always);
    `signed_in`: any signed-in person; `devices`: device-token kinds, and then no person;
    `staff`: the admin site also needs is_staff; `public`: anyone, with `why`."""

    why: str
    roles: frozenset = frozenset()
    signed_in: bool = False
    devices: frozenset = frozenset()
    staff: bool = False
    public: bool = False
    prefix: bool = field(default=False)

    def admits(self, who: Principal) -> bool:
        if self.public:
            return True
        if who.kind in {"scanner", "sensor"}:
            return who.kind in self.devices
        if who.kind == "anonymous" or self.devices:
            return False
        if who.superuser:
            return True
        if self.staff and not who.staff:
            return False
        return self.signed_in or bool(set(who.roles) & self.roles)


def public(why: str) -> Rule:
    return Rule(why, public=True)


def roles(allowed: frozenset, why: str = "") -> Rule:
    return Rule(why or ", ".join(sorted(allowed)), roles=allowed)


#: The intentionally public URLs. Nothing else answers a visitor who is not signed in.
PUBLIC = {
    "/accounts/login/": public("the sign-in page (lockout after repeated failures: django-axes)"),
    "/accounts/logout/": public("signing out needs nobody; POST only, CSRF-protected"),
    "/admin/login/": public("the admin's sign-in page (same lockout)"),
    "/admin/logout/": public("signing out of the admin; POST only, CSRF-protected"),
    "/healthz/": public("load-balancer liveness: status only, no data"),
    "/api/v1/health/": public("readiness for probes: component states and counts, no hosts"),
    "/metrics": public("Prometheus: off unless METRICS_TOKEN is set, then bearer token only"),
    "/fhir/metadata": public("FHIR CapabilityStatement: public by the FHIR and SMART specs"),
}
#: Gateways and sensors post here with their device token; no person may, not even an admin.
DEVICE_ONLY = {
    "/api/v1/readings/rssi/": Rule(
        "scanner gateways' RSSI batches", devices=frozenset({"scanner"})
    ),
    "/api/v1/scanners/heartbeat/": Rule("scanner agent health", devices=frozenset({"scanner"})),
    "/api/v1/readings/environment/": Rule(
        "sensors, or gateways relaying their assigned sensors",
        devices=frozenset({"scanner", "sensor"}),
    ),
}
PEOPLE = {
    "/": Rule("the start page: links to what the person's roles open", signed_in=True),
    "/accounts/password_change/": Rule("one's own password", signed_in=True),
    "/accounts/password_change/done/": Rule("one's own password", signed_in=True),
    "/map/": roles(CLINICAL),
    "/assets/1/": roles(CLINICAL),
    "/par/": roles(CLINICAL),
    "/console/": roles(CONSOLE),
    "/sensors/": roles(CONSOLE),
    "/api/v1/assets/": roles(CLINICAL),
    "/api/v1/assets/1/": roles(CLINICAL),
    "/api/v1/assets/1/history/": roles(CLINICAL),
    "/api/v1/assets/1/stays/": roles(CLINICAL),
    "/api/v1/assets/1/status/": roles(CLINICAL, "ward statuses; maintenance/retired biomed"),
    "/api/v1/asset-types/": roles(CLINICAL),
    "/api/v1/asset-types/1/": roles(CLINICAL),
    "/api/v1/buildings/": roles(CLINICAL),
    "/api/v1/buildings/1/": roles(CLINICAL),
    "/api/v1/floors/": roles(CLINICAL),
    "/api/v1/floors/1/": roles(CLINICAL),
    "/api/v1/zones/": roles(CLINICAL),
    "/api/v1/zones/1/": roles(CLINICAL),
    "/api/v1/find-nearest/": roles(CLINICAL),
    "/api/v1/scanners/": roles(INFRASTRUCTURE),
    "/api/v1/scanners/1/": roles(INFRASTRUCTURE),
    "/api/v1/sensors/": roles(COLD_CHAIN),
    "/api/v1/sensors/1/": roles(COLD_CHAIN),
    "/api/v1/sensors/1/daily/": roles(COLD_CHAIN),
    "/api/v1/sensors/1/readings/": roles(COLD_CHAIN),
    "/api/v1/sensors/1/report/": roles(COLD_CHAIN),
    "/api/v1/environment-readings/": roles(COLD_CHAIN),
    "/api/v1/environment-readings/1/": roles(COLD_CHAIN),
    "/api/v1/reading-annotations/": roles(COLD_CHAIN),
    "/api/v1/reading-annotations/1/": roles(COLD_CHAIN),
    "/api/v1/alerts/": roles(COLD_CHAIN),
    "/api/v1/alerts/1/": roles(COLD_CHAIN),
    "/api/v1/alerts/1/acknowledge/": roles(CONSOLE),
    "/api/v1/alerts/1/resolve/": roles(CONSOLE),
    "/api/v1/reports/utilisation/": roles(EQUIPMENT),
    "/fhir/1": roles(CLINICAL, "FHIR search; integration keys map to a role"),
    "/fhir/1/1": roles(CLINICAL, "FHIR read; integration keys map to a role"),
    "/api/v1/schema/": roles(CLINICAL, "the API description is for the hospital's staff"),
    "/api/v1/docs/": roles(CLINICAL, "the API description is for the hospital's staff"),
    "/api/v1/workflows/par-board/": roles(CLINICAL),
    "/api/v1/workflows/maintenance/due/": roles(EQUIPMENT),
    "/api/v1/workflows/maintenance/near-me/": roles(EQUIPMENT),
    "/api/v1/workflows/utilisation/": roles(EQUIPMENT),
    "/api/v1/workflows/device-health/tags/": roles(INFRASTRUCTURE),
    "/api/v1/workflows/device-health/tags/1/": roles(INFRASTRUCTURE),
    "/api/v1/workflows/device-health/gateways/": roles(INFRASTRUCTURE),
    "/api/v1/workflows/zone-rules/": roles(EQUIPMENT),
    "/api/v1/workflows/zone-rules/1/": roles(EQUIPMENT),
    "/api/v1/workflows/status-changes/": roles(EQUIPMENT),
    "/api/v1/workflows/status-changes/1/": roles(EQUIPMENT),
    "/api/v1/workflows/zone-groups/": roles(EQUIPMENT),
    "/api/v1/workflows/zone-groups/1/": roles(EQUIPMENT),
    "/api/v1/workflows/par-levels/": roles(EQUIPMENT),
    "/api/v1/workflows/par-levels/1/": roles(EQUIPMENT),
    "/api/v1/workflows/geofences/": roles(EQUIPMENT),
    "/api/v1/workflows/geofences/1/": roles(EQUIPMENT),
    "/api/v1/workflows/maintenance/schedules/": roles(EQUIPMENT),
    "/api/v1/workflows/maintenance/schedules/1/": roles(EQUIPMENT),
    "/api/v1/workflows/maintenance/work-orders/": roles(EQUIPMENT),
    "/api/v1/workflows/maintenance/work-orders/1/": roles(EQUIPMENT),
    "/api/v1/workflows/maintenance/recalls/": roles(EQUIPMENT),
    "/api/v1/workflows/maintenance/recalls/1/": roles(EQUIPMENT),
    "/api/v1/workflows/maintenance/recalls/1/launch/": roles(EQUIPMENT),
    "/api/v1/workflows/maintenance/recalls/1/units/": roles(EQUIPMENT),
}
#: Every other admin URL: is_staff and a managing role (web/admin_site.py), then Django's model
#: permissions, which the role groups carry (hospital/roles.py, ROLE_MODEL_PERMISSIONS). The
#: roles that may open a model's pages at all, first matching "app_label.model" pattern wins.
ADMIN_SITE = Rule(
    "staff with biomed, facilities or admin", roles=INFRASTRUCTURE, staff=True, prefix=True
)
ADMIN_MODELS = [
    ("auth.*", frozenset({ADMIN})),
    ("auditlog.*", frozenset({ADMIN})),
    ("axes.*", frozenset({ADMIN})),
    ("integrations.*", frozenset({ADMIN})),
    ("hospital.*", INFRASTRUCTURE),
    ("tracking.scanner", INFRASTRUCTURE),
    ("tracking.*", EQUIPMENT),
    ("workflows.*", EQUIPMENT),
    ("environment.sensor", COLD_CHAIN),
    ("environment.*", CONSOLE),
    ("alerts.*", CONSOLE),
]
POLICY = {**PUBLIC, **DEVICE_ONLY, **PEOPLE}
WEBSOCKETS = {
    "ws/floors/<int:floor_id>/": CLINICAL,
    "ws/alerts/": CONSOLE,
}
ALL_ENDPOINTS = endpoints()
LOGIN_PAGES = (settings.LOGIN_URL, "/admin/login/")


def admin_model_roles(app_label: str, model: str) -> frozenset | None:
    for pattern, allowed in ADMIN_MODELS:
        if fnmatchcase(f"{app_label}.{model}", pattern):
            return allowed
    return None


def rule_for(endpoint: Endpoint) -> Rule | None:
    if endpoint.path in POLICY:
        return POLICY[endpoint.path]
    if not endpoint.path.startswith("/admin/"):
        return None
    parts = endpoint.path.strip("/").split("/")
    if endpoint.name == "admin:app_list":
        app_roles = frozenset().union(
            *(r for p, r in ADMIN_MODELS if fnmatchcase(parts[1], p.split(".")[0]))
        )
        return Rule(f"admin app {parts[1]}", roles=app_roles, staff=True, prefix=True)
    registered = {(m._meta.app_label, m._meta.model_name) for m in admin.site._registry}
    if len(parts) >= 3 and (parts[1], parts[2]) in registered:
        allowed = admin_model_roles(parts[1], parts[2])
        if allowed is None:
            return None  # an admin model nobody decided the access of
        return Rule(f"admin {parts[1]}.{parts[2]}", roles=allowed, staff=True, prefix=True)
    return ADMIN_SITE


def refused(response, endpoint: Endpoint, method: str) -> bool:
    """401/403, a redirect to a sign-in page, or (function views, which cannot say which
    methods they serve) 405. The admin's app index answers 404 to staff with no model of the
    app, as Django does (it shows nothing of it)."""
    if response.status_code in (401, 403):
        return True
    if response.status_code == 404 and endpoint.name == "admin:app_list":
        return True
    if response.status_code == 302:
        location = response["Location"]
        if location.startswith(LOGIN_PAGES):
            return True
        # The admin's object URLs on a missing object: `<id>/` forwards to `<id>/change/`
        # (enumerated and checked itself) and `history/` to the index, before looking at
        # permissions, with nothing of the object shown; test_admin_object_pages_* cover
        # existing objects.
        return endpoint.path.startswith("/admin/") and (
            location == f"{endpoint.path}change/" or location == "/admin/"
        )
    return response.status_code == 405 and endpoint.function_view


def knock(who: Principal, endpoint: Endpoint, method: str):
    client = who.client()
    return client.generic(method, endpoint.path, b"{}", content_type="application/json")


def test_every_url_is_in_the_policy_and_every_rule_is_used():
    missing = [str(e) for e in ALL_ENDPOINTS if rule_for(e) is None]
    assert not missing, "URLs nobody decided the access of (add them to POLICY): " + ", ".join(
        missing
    )
    paths = {e.path for e in ALL_ENDPOINTS}
    assert not set(POLICY) - paths, f"rules for URLs that no longer exist: {set(POLICY) - paths}"


def test_no_other_url_is_public():
    """Public means: answers someone with no credentials at all, for every method."""
    assert {p for p, rule in POLICY.items() if rule.public} == set(PUBLIC)
    assert all(not rule.public for rule in [*DEVICE_ONLY.values(), *PEOPLE.values(), ADMIN_SITE])


@pytest.mark.parametrize("endpoint", ALL_ENDPOINTS, ids=str)
def test_everyone_not_admitted_is_refused_for_every_method(endpoint, principals):
    rule = rule_for(endpoint)
    if rule is None:
        pytest.fail(f"{endpoint} is not in the policy")
    if rule.public:
        return
    holes = []
    for who in principals.values():
        if rule.admits(who):
            continue
        for method in endpoint.methods:
            response = knock(who, endpoint, method)
            if not refused(response, endpoint, method):
                holes.append(f"{who.name} {method} -> {response.status_code}")
    assert not holes, f"{endpoint} answers people it should refuse: {holes}"


def _door_checked(endpoint: Endpoint) -> bool:
    """Pages whose answer does not depend on an object or a query: every non-admin URL, and
    the admin's index, app indexes and model lists (object pages are covered above)."""
    rule = rule_for(endpoint) or ADMIN_SITE
    if rule.public:
        return False
    if not endpoint.path.startswith("/admin/"):
        return True
    return endpoint.name in {"admin:index", "admin:app_list"} or endpoint.name.endswith(
        "_changelist"
    )


@pytest.mark.parametrize("endpoint", [e for e in ALL_ENDPOINTS if _door_checked(e)], ids=str)
def test_someone_admitted_gets_past_the_door(endpoint, principals):
    """The table is not stricter than the code: the first admitted principal (not a
    superuser) is not refused on the first method (a 404 or 400 is fine: it got in)."""
    rule = rule_for(endpoint)
    if rule is None:
        pytest.fail(f"{endpoint} is not in the policy")
    admitted = [who for who in principals.values() if rule.admits(who) and not who.superuser] or [
        principals["superuser"]
    ]
    method = "GET" if "GET" in endpoint.methods else endpoint.methods[0]
    response = knock(admitted[0], endpoint, method)
    assert not refused(response, endpoint, method) or response.status_code == 405, (
        f"{admitted[0].name} {method} {endpoint} -> {response.status_code}"
    )


def test_devices_read_nothing(principals):
    """A gateway's or sensor's token reads nothing: every GET of the project refuses it."""
    holes = []
    for endpoint in ALL_ENDPOINTS:
        rule = rule_for(endpoint)
        if (rule is not None and rule.public) or "GET" not in endpoint.methods:
            continue
        for name in ("scanner-token", "sensor-token"):
            response = knock(principals[name], endpoint, "GET")
            if not refused(response, endpoint, "GET"):
                holes.append(f"{name} GET {endpoint} -> {response.status_code}")
    assert not holes


def test_metrics_need_the_bearer_token(client, settings, principals):
    settings.METRICS_TOKEN = "m" * 40
    assert client.get("/metrics").status_code == 401
    assert principals["superuser"].client().get("/metrics").status_code == 401
    token_client = principals["scanner-token"].client()
    assert token_client.get("/metrics").status_code == 401
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404


# --- websockets -----------------------------------------------------------------------------


def _ws_headers(who: Principal) -> list[tuple[bytes, bytes]]:
    """What a browser (or a gateway trying its token) would send: origin, host, the session
    cookie of a signed-in person, or the device token."""
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    if who.user is not None:
        client = Client()
        client.force_login(who.user)
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode()))
    if who.token:
        headers.append((b"authorization", f"Token {who.token}".encode()))
    return headers


async def _knock_ws(path: str, headers) -> tuple[bool, object]:
    """Connect through the real ASGI stack (origin check, session auth). Returns whether the
    socket stayed open with data flowing, and the first message or the close code."""
    from hospital.asgi import application

    communicator = WebsocketCommunicator(application, path, headers=headers)
    try:
        connected, code = await communicator.connect(timeout=5)
        if not connected:
            return False, code
        message = await communicator.receive_output(timeout=5)
    finally:
        # as a server does after any close: the consumer ends on the disconnect message, not by
        # being cancelled in the middle of its channel layer's blocking receive
        await communicator.disconnect()
    if message["type"] == "websocket.close":
        return False, message.get("code")
    return True, message


@pytest.mark.django_db(transaction=True)
def test_every_websocket_route_is_in_the_policy():
    from hospital.routing import websocket_urlpatterns

    routes = {route for _, route in websocket_routes(websocket_urlpatterns)}
    assert routes == set(WEBSOCKETS)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("route", sorted(WEBSOCKETS))
def test_websockets_refuse_everyone_not_admitted(route, principals):
    from hospital.models import Floor
    from hospital.routing import websocket_urlpatterns

    floor = Floor.objects.first()
    paths = {r: p for p, r in websocket_routes(websocket_urlpatterns)}
    path = paths[route].replace("/1/", f"/{floor.pk}/")
    allowed = WEBSOCKETS[route]
    for who in principals.values():
        admitted = who.superuser or bool(set(who.roles) & allowed)
        if who.kind != "person":
            admitted = False
        stayed_open, got = async_to_sync(_knock_ws)(path, _ws_headers(who))
        assert stayed_open == admitted, f"{who.name} on {path}: {got}"


def test_role_groups_are_the_documented_ones(db):
    assert set(Group.objects.values_list("name", flat=True)) >= {NURSE, BIOMED, FACILITIES, ADMIN}


def test_admin_object_pages_refuse_roles_without_the_model(principals):
    """History and change pages of objects that exist: a role without the model's permission
    gets 403, one with it gets the page."""
    from environment.models import ThresholdProfile
    from tests.factories import TagFactory

    tag = TagFactory()
    profile = ThresholdProfile.objects.first()
    cases = [
        (f"/admin/tracking/tag/{tag.pk}/", "biomed-staff", "facilities-staff"),
        (f"/admin/environment/thresholdprofile/{profile.pk}/", "facilities-staff", "biomed-staff"),
        (f"/admin/auth/user/{principals['nurse'].user.pk}/", "admin-staff", "biomed-staff"),
    ]
    for base, allowed, wrong in cases:
        for page in ("change/", "history/"):
            assert principals[wrong].client().get(base + page).status_code == 403, base + page
            assert principals[allowed].client().get(base + page).status_code == 200, base + page
