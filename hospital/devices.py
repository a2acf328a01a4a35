"""Device credentials for scanner gateways and sensors.

A token is `ww_<lookup>_<secret>`: the lookup part finds the row, the secret is checked against a
SHA-256 hash in constant time. The secret carries 256 random bits, so a fast hash is enough (no
password-stretching needed: there is nothing to brute-force). Issuing a token revokes the owner's
previous ones, so `manage.py scanner_token SERIAL` is also the rotation. A decommissioned
gateway's token (scanner not active) is refused like a revoked one; a decommissioned sensor's
readings are refused one by one with the reason (environment.ingest), so the sensor stops
retrying them.

Revocation reaches every process at once: each process trusts a verified token for up to
VERIFIED_CACHE_S, but only while a revocation epoch in the shared cache (Redis in production)
is unchanged, and every issue, revocation, deactivation or deletion bumps that epoch. Should the
shared cache be unreachable, the local trust still ends after VERIFIED_CACHE_S.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from hospital import observability
from hospital.models import DeviceToken
from web.middleware import client_ip

CREDENTIAL_MARK = "ww"
LAST_USED_RESOLUTION = timedelta(minutes=1)
#: A verified token is trusted this long in the process that verified it, so a device's upload
#: does not cost a database query each, and never past a revocation: every request reads the
#: shared revocation epoch (REVOCATION_EPOCH_KEY), which any revocation changes. Without a
#: readable epoch, trust ends after VERIFIED_CACHE_S, the bound on revocation in other processes.
VERIFIED_CACHE_WITH_EPOCH_S = 60.0
VERIFIED_CACHE_S = 5.0
VERIFIED_CACHE_MAX = 10_000
REVOCATION_EPOCH_KEY = "ww:devices:revocation-epoch"

#: token hash -> (monotonic time verified, token, revocation epoch then)
_verified: dict[str, tuple[float, object, object]] = {}
_verified_lock = threading.Lock()
log = logging.getLogger(__name__)


def forget_verified_tokens() -> None:
    """Drop every process's trust in verified tokens (after issuing or revoking one)."""
    with _verified_lock:
        _verified.clear()
    try:
        bump_revocation_epoch()
    except Exception:
        log.warning(
            "could not bump the device revocation epoch; other processes stop "
            "trusting revoked tokens within %s s",
            VERIFIED_CACHE_S,
            exc_info=True,
        )


def bump_revocation_epoch() -> None:
    """Tell every process that a token was revoked (their cached trust ends at once)."""
    client = observability.redis_client()
    if client is None:
        cache.set(REVOCATION_EPOCH_KEY, secrets.token_hex(8), timeout=None)
    else:
        client.set(REVOCATION_EPOCH_KEY, secrets.token_hex(8))


def revocation_epoch():
    """Read straight from Redis: once per device request, so no cache-client overhead."""
    try:
        client = observability.redis_client()
        return (
            cache.get(REVOCATION_EPOCH_KEY) if client is None else client.get(REVOCATION_EPOCH_KEY)
        )
    except Exception:
        return None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def issue_token(*, scanner=None, sensor=None) -> str:
    """A new token for the scanner or the sensor, revoking the ones it had. Returns plaintext."""
    if (scanner is None) == (sensor is None):
        raise ValueError("a token belongs to exactly one scanner or one sensor")
    owner = {"scanner": scanner} if scanner is not None else {"sensor": sensor}
    _revoke(DeviceToken.objects.filter(**owner, revoked_at__isnull=True))
    lookup = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    DeviceToken.objects.create(**owner, lookup=lookup, secret_hash=_hash(secret))
    forget_verified_tokens()
    return f"{CREDENTIAL_MARK}_{lookup}_{secret}"


def _revoke(tokens) -> int:
    """Row by row (a handful per device), so each revocation lands in the audit trail."""
    now = timezone.now()
    count = 0
    for token in tokens:
        token.revoked_at = now
        token.save(update_fields=["revoked_at"])
        count += 1
    return count


def revoke_tokens(*, scanner=None, sensor=None) -> int:
    owner = {"scanner": scanner} if scanner is not None else {"sensor": sensor}
    count = _revoke(DeviceToken.objects.filter(**owner, revoked_at__isnull=True))
    forget_verified_tokens()
    return count


def verify_token_cached(presented: str) -> DeviceToken | None:
    """`verify_token`, remembering a success while the revocation epoch is unchanged: for
    VERIFIED_CACHE_WITH_EPOCH_S when the epoch can be read, else VERIFIED_CACHE_S (failures are
    not cached)."""
    key = _hash(presented)
    now = time.monotonic()
    epoch = revocation_epoch()
    trust = VERIFIED_CACHE_S if epoch is None else VERIFIED_CACHE_WITH_EPOCH_S
    entry = _verified.get(key)
    if entry is not None and now - entry[0] < trust and entry[2] == epoch:
        return entry[1]
    token = verify_token(presented)
    if token is not None:
        with _verified_lock:
            if len(_verified) >= VERIFIED_CACHE_MAX:
                _verified.clear()
            _verified[key] = (now, token, epoch)
    return token


def _owner_changed(sender, instance, **kwargs) -> None:
    forget_verified_tokens()


def connect_revocation_signals() -> None:
    """A token saved or deleted (the admin's revoke), a scanner or sensor deactivated or
    deleted: every process re-checks its tokens on their next use."""
    from django.db.models.signals import post_delete, post_save

    for model in ("hospital.DeviceToken", "tracking.Scanner", "environment.Sensor"):
        for signal in (post_save, post_delete):
            signal.connect(_owner_changed, sender=model, dispatch_uid=f"devices-{model}")


def verify_token(presented: str) -> DeviceToken | None:
    """The active token row matching the presented string, or None."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != CREDENTIAL_MARK:
        return None
    _, lookup, secret = parts
    token = (
        DeviceToken.objects.select_related("scanner", "sensor")
        .filter(lookup=lookup, revoked_at__isnull=True)
        .first()
    )
    if token is None:
        _hash(secret)  # same work whether or not the lookup exists
        return None
    if not hmac.compare_digest(token.secret_hash, _hash(secret)):
        return None
    if token.scanner is not None and not token.scanner.is_active:
        return None
    return token


@dataclass(frozen=True)
class Device:
    """The principal of a request made with a device token. It is no User: every human
    permission (roles) refuses it, and device permissions refuse humans."""

    token: DeviceToken

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False

    @property
    def scanner(self):
        return self.token.scanner

    @property
    def sensor(self):
        return self.token.sensor

    @property
    def pk(self):
        return None

    def __str__(self) -> str:
        return f"device:{self.token.scanner or self.token.sensor}"


class DeviceTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Token <token>'")
        try:
            presented = header[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("token is not valid text") from exc
        token = verify_token_cached(presented)
        if token is None:
            raise exceptions.AuthenticationFailed("invalid or revoked device token")
        self._record_use(token, request)
        return Device(token), token

    def authenticate_header(self, request):
        return self.keyword

    @staticmethod
    def _record_use(token: DeviceToken, request) -> None:
        now = timezone.now()
        if token.last_used_at and now - token.last_used_at < LAST_USED_RESOLUTION:
            return
        token.last_used_at = now
        token.last_used_ip = client_ip(request) or None  # behind nginx: the gateway's address
        DeviceToken.objects.filter(pk=token.pk).update(
            last_used_at=now, last_used_ip=token.last_used_ip
        )


class IsScannerDevice(permissions.BasePermission):
    message = "this endpoint needs a scanner gateway's device token"

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, Device) and request.user.scanner is not None


class IsSensorOrScannerDevice(permissions.BasePermission):
    message = "this endpoint needs a sensor's or a scanner gateway's device token"

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, Device)
