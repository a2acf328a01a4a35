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

The device endpoints (DeviceView) also count the request against the device's rate limit in the
same Redis round trip as the epoch read, so a trusted token costs one round trip for both.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from hospital import observability, ratelimit
from hospital.joined_rows import JoinedModels
from hospital.models import DeviceToken
from web.middleware import client_ip

CREDENTIAL_MARK = "ww"
#: A token's `last_used_at` / `last_used_ip` are written at most this often per process (each
#: write is a transaction of its own: at 1 minute, 2,000 sensors across two processes wrote
#: about 45 a second beside 200 uploads).
LAST_USED_RESOLUTION = timedelta(minutes=5)
#: A verified token is trusted this long in the process that verified it, so a device's upload
#: does not cost a database query each, and never past a revocation: every request reads the
#: shared revocation epoch (REVOCATION_EPOCH_KEY), which any revocation changes. Without a
#: readable epoch, trust ends after VERIFIED_CACHE_S, the bound on revocation in other processes.
#: 5 minutes: each process sees every sensor of a site (2,000 sensors every 10 s across two
#: gunicorn processes re-verified 67 tokens a second at 60 s, a third of the uploads, each a
#: query, a hash, a `last_used_at` write and a second Redis round trip; 13 a second at 5 min).
VERIFIED_CACHE_WITH_EPOCH_S = 300.0
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
    return check_device(presented)[0]


@dataclass(frozen=True)
class Rate:
    """Where a request stands in its device's rate limit: `wait` seconds before retrying (0:
    within it), or the error that kept Redis from counting it, raised where the limit is
    applied (DeviceRateLimit) so the answer is the outage's 503, as with a separate round trip."""

    wait: int = 0
    error: Exception | None = None


def check_device(
    presented: str, rate_key: Callable[[DeviceToken], str | None] | None = None
) -> tuple[DeviceToken | None, Rate | None]:
    """`verify_token_cached`, and the request counted against its device's rate limit when
    `rate_key` names one for the token. A token this process trusts already costs one Redis
    round trip for both (the epoch read and the count are pipelined); a token it must verify,
    the rare case, a second one for the count."""
    key = _hash(presented)
    now = time.monotonic()
    entry = _verified.get(key)
    bucket = rate_key(entry[1]) if entry is not None and rate_key is not None else None
    epoch, rate = _epoch_and_rate(bucket)
    trust = VERIFIED_CACHE_S if epoch is None else VERIFIED_CACHE_WITH_EPOCH_S
    if entry is not None and now - entry[0] < trust and entry[2] == epoch:
        return entry[1], rate
    token = verify_token(presented)
    if token is None:
        _verified.pop(key, None)  # its requests no longer count against the device's limit
        return None, None
    with _verified_lock:
        if len(_verified) >= VERIFIED_CACHE_MAX:
            _verified.clear()
        _verified[key] = (now, token, epoch)
    if rate_key is not None and (rate is None or rate_key(token) != bucket):
        bucket = rate_key(token)
        rate = _count(bucket) if bucket is not None else None
    return token, rate


def _epoch_and_rate(bucket: str | None) -> tuple[object, Rate | None]:
    """The revocation epoch and, with a bucket and the shared Redis, the request counted in it,
    in one round trip. A failed read leaves the epoch unknown (trust ends sooner) and the count
    failed."""
    client = observability.redis_client() if bucket is not None else None
    if client is None:
        return revocation_epoch(), None
    pipe = client.pipeline(transaction=False)
    pipe.get(REVOCATION_EPOCH_KEY)
    ratelimit.queue_hit(pipe, bucket)
    try:
        epoch, count, _ = pipe.execute()
    except Exception as exc:
        return None, Rate(error=exc)
    return epoch, Rate(wait=ratelimit.judge(count, settings.WARDWISE["DEVICE_RATE_PER_S"]))


def _count(bucket: str) -> Rate:
    try:
        _allowed, wait = ratelimit.allow(bucket, settings.WARDWISE["DEVICE_RATE_PER_S"])
    except Exception as exc:
        return Rate(error=exc)
    return Rate(wait=wait)


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
    token = _active_token(lookup)
    if token is None:
        _hash(secret)  # same work whether or not the lookup exists
        return None
    if not hmac.compare_digest(token.secret_hash, _hash(secret)):
        return None
    if token.scanner is not None and not token.scanner.is_active:
        return None
    return token


def _active_token(lookup: str) -> DeviceToken | None:
    """`DeviceToken.objects.select_related("scanner", "sensor").filter(lookup=lookup,
    revoked_at__isnull=True).first()` (`lookup` is unique). On PostgreSQL one plain query
    written out once: compiling it through the ORM cost more than running it, for every token
    each server process verifies (all of a site's devices when the processes start)."""
    if connection.vendor != "postgresql":
        return (
            DeviceToken.objects.select_related("scanner", "sensor")
            .filter(lookup=lookup, revoked_at__isnull=True)
            .first()
        )
    query = _token_query()
    with connection.cursor() as cursor:
        cursor.execute(query.sql, [lookup])
        row = cursor.fetchone()
    return None if row is None else query.instance(row)


class _TokenQuery:
    def __init__(self) -> None:
        quote = connection.ops.quote_name
        scanner = DeviceToken._meta.get_field("scanner")
        sensor = DeviceToken._meta.get_field("sensor")
        self.joined = JoinedModels(
            [(DeviceToken, "t"), (scanner.related_model, "sc"), (sensor.related_model, "se")]
        )
        table, scanners, sensors = (quote(model._meta.db_table) for model in self.joined.models)
        self.sql = (
            f"SELECT {self.joined.columns} FROM {table} t "  # noqa: S608  # nosec B608
            f"LEFT JOIN {scanners} sc ON sc.id = t.{quote(scanner.column)} "
            f"LEFT JOIN {sensors} se ON se.id = t.{quote(sensor.column)} "
            f"WHERE t.{quote('lookup')} = %s AND t.{quote('revoked_at')} IS NULL LIMIT 1"
        )

    def instance(self, row: tuple) -> DeviceToken:
        token, scanner, sensor = self.joined.instances(row)
        token.scanner, token.sensor = scanner, sensor
        return token


@functools.cache
def _token_query() -> _TokenQuery:
    return _TokenQuery()


@dataclass(frozen=True)
class Device:
    """The principal of a request made with a device token. It is no User: every human
    permission (roles) refuses it, and device permissions refuse humans. `rate`: the request
    counted against the endpoint's rate limit along with the token check (None: no limit)."""

    token: DeviceToken
    rate: Rate | None = None

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

    def __init__(self, rate_key: Callable[[DeviceToken], str | None] | None = None):
        self.rate_key = rate_key

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
        token, rate = check_device(presented, self.rate_key)
        if token is None:
            raise exceptions.AuthenticationFailed("invalid or revoked device token")
        self._record_use(token, request)
        return Device(token, rate), token

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


class DeviceThrottled(exceptions.APIException):
    """429 with Retry-After (DRF's handler sets it from `wait`) and the device's message."""

    status_code = 429

    def __init__(self, wait: int):
        self.wait = wait
        super().__init__(f"too many requests from this device; retry after {wait} s")


class DeviceRateLimit(throttling.BaseThrottle):
    """Applies the count DeviceTokenAuthentication took (after the permission check, as DRF
    orders throttles), so the limit costs no Redis round trip of its own."""

    def allow_request(self, request, view) -> bool:
        rate = getattr(request.user, "rate", None)
        if rate is None:
            return True
        if rate.error is not None:
            raise rate.error
        self._wait = rate.wait
        return rate.wait == 0

    def wait(self):
        return self._wait


class JsonOnly(BaseContentNegotiation):
    """Devices read JSON: every answer is JSON, whatever Accept says, without parsing it."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class DeviceView(APIView):
    """Base of the device endpoints (readings, heartbeats): device token only, JSON answers
    only, the raw body to the view (no parser), and the per-device rate limit of `rate_key`
    counted with the token check."""

    authentication_classes = [DeviceTokenAuthentication]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonOnly
    parser_classes: list = []
    throttle_classes = [DeviceRateLimit]

    @staticmethod
    def rate_key(token: DeviceToken) -> str | None:
        """The token's rate-limit bucket on this endpoint; None: none (wrong kind of device,
        refused by the permission check)."""
        return None

    def get_authenticators(self):
        return [DeviceTokenAuthentication(self.rate_key)]

    def throttled(self, request, wait):
        raise DeviceThrottled(wait)
