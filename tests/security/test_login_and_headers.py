"""Sign-in protection (django-axes lockout, password validation), cookie settings, security
headers and the Content-Security-Policy on every kind of page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client

from web.middleware import CSP, PERMISSIONS_POLICY, RELAXED_STYLE_CSP, client_ip

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery-2026"
#: An executable inline script: no src, and not a JSON data block (json_script), which the
#: browser never runs.
INLINE_SCRIPT = re.compile(
    r"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>\s*\S", re.IGNORECASE
)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<[^>]+\sstyle\s*=", re.IGNORECASE)


@pytest.fixture
def nurse(db):
    from django.contrib.auth.models import Group

    user = User.objects.create_user("lockout-nurse", password=PASSWORD)
    user.groups.add(Group.objects.get(name="nurse"))
    return user


def sign_in(client: Client, password: str, *, ip="10.1.2.3", path="/accounts/login/"):
    return client.post(path, {"username": "lockout-nurse", "password": password}, REMOTE_ADDR=ip)


def test_repeated_failures_lock_the_user_name_from_that_address(nurse, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, "wrong-guess").status_code == 200  # the form again
    assert sign_in(client, "wrong-guess").status_code == 429
    # Locked: even the right password is refused from this address for the cool-off...
    assert sign_in(client, PASSWORD).status_code == 429
    # ...but the nurse at another workstation still signs in (no lockout denial of service).
    assert sign_in(Client(), PASSWORD, ip="10.9.9.9").status_code == 302


def test_the_admin_sign_in_shares_the_lockout(nurse, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "wrong-guess", path="/admin/login/")
    assert sign_in(Client(), PASSWORD).status_code == 429


def test_a_success_resets_the_count(nurse, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(client, "wrong-guess")
    assert sign_in(Client(), PASSWORD).status_code == 302
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(client, "wrong-guess")
    assert sign_in(Client(), PASSWORD).status_code == 302


def test_the_lockout_counts_the_address_the_proxy_saw(settings, rf):
    settings.WARDWISE_PROXY_HOPS = 1
    request = rf.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 10.1.2.3")
    assert client_ip(request) == "10.1.2.3"  # the client forged the first entry
    settings.WARDWISE_PROXY_HOPS = 0
    assert client_ip(request) == "127.0.0.1"


@pytest.mark.parametrize(
    "password", ["short1", "password1234", "12345678901234", "lockout-nurse-1"]
)
def test_weak_passwords_are_refused(nurse, password):
    with pytest.raises(ValidationError):
        validate_password(password, user=nurse)


def test_a_good_password_passes(nurse):
    validate_password("Tidal-Lantern-Orchid-42", user=nurse)


def test_session_and_csrf_cookies(settings):
    assert settings.SESSION_COOKIE_HTTPONLY
    assert settings.SESSION_COOKIE_SAMESITE == "Lax"
    assert settings.CSRF_COOKIE_SAMESITE == "Strict"
    assert settings.SESSION_COOKIE_AGE <= 12 * 3600


def production_settings(probe: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        WARDWISE_PRODUCTION="true",
        SECRET_KEY="x7#Kq2!vR9@pL4$wZ8^nB3&mT6*yH1(cF5)jD0_sG-eA+uQ=iO~rN>tV<kM?xW",
        ALLOWED_HOSTS="rtls.example.org",
        DJANGO_SETTINGS_MODULE="hospital.settings",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import django; django.setup(); from django.conf import settings as s; print({probe})",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_production_cookies_are_secure_and_hsts_is_on():
    values = production_settings(
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, "
        "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_NAME"
    )
    assert values == "True True 31536000 True True __Host-sessionid"


def page_of(client: Client, path: str):
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response


@pytest.fixture
def root(db):
    user = User.objects.create_superuser("root-headers", password=PASSWORD)
    client = Client()
    client.force_login(user)
    return client


APP_PAGES = ["/", "/map/", "/console/", "/sensors/", "/par/"]
RELAXED_PAGES = [
    "/admin/",
    "/admin/tracking/asset/",
    "/admin/tracking/asset/add/",
    "/admin/auditlog/logentry/",
    "/api/v1/docs/",
]


def test_every_page_sends_the_security_headers(root, client):
    pages = [(client, "/accounts/login/")] + [(root, p) for p in APP_PAGES + RELAXED_PAGES]
    for who, path in pages:
        response = page_of(who, path)
        assert response["X-Content-Type-Options"] == "nosniff", path
        assert response["Referrer-Policy"] == "same-origin", path
        assert response["X-Frame-Options"] == "DENY", path
        assert response["Cross-Origin-Opener-Policy"] == "same-origin", path
        assert response["Permissions-Policy"] == PERMISSIONS_POLICY, path
        expected = RELAXED_STYLE_CSP if path in RELAXED_PAGES else CSP
        assert response["Content-Security-Policy"] == expected, path
    api = root.get("/api/v1/assets/")
    assert api["X-Content-Type-Options"] == "nosniff"
    assert api["Permissions-Policy"] == PERMISSIONS_POLICY


def test_no_page_has_inline_script_so_the_policy_holds(root, client):
    """The CSP allows no inline script anywhere and no inline style on our own pages: prove
    the pages need none, or the browser would silently break them."""
    pages = [(client, "/accounts/login/")] + [(root, p) for p in APP_PAGES + RELAXED_PAGES]
    for who, path in pages:
        html = page_of(who, path).content.decode()
        assert not INLINE_SCRIPT.search(html), (path, INLINE_SCRIPT.search(html).group(0))
        assert not INLINE_HANDLER.search(html), (path, INLINE_HANDLER.search(html).group(0))
        if path not in RELAXED_PAGES:
            assert not INLINE_STYLE.search(html), (path, INLINE_STYLE.search(html).group(0))


def test_swagger_ui_comes_from_our_own_static_files(root):
    html = page_of(root, "/api/v1/docs/").content.decode()
    assert "cdn." not in html
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html
