"""API keys of integration clients: `wwi_<lookup>_<secret>`, sent as `Authorization: Bearer`.

Same scheme as the device tokens (hospital.devices): the lookup finds the row, the 256-bit secret
is compared with a SHA-256 hash in constant time. The key authenticates the client's service
user, so every role check of the project applies unchanged. Device tokens (`ww_...`) are
refused here: a scanner or sensor credential never reads patient-area data.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from rest_framework import authentication, exceptions

from hospital import audit
from hospital.roles import ALL_ROLES
from integrations.models import IntegrationClient

KEY_MARK = "wwi"
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def issue_key(name: str, role: str) -> str:
    """A new key for the client `name` (created with a service user in `role` if new); the old
    key stops working. Returns the plaintext, which is never stored."""
    if role not in ALL_ROLES:
        raise ValueError(f"role must be one of {', '.join(ALL_ROLES)}")
    lookup = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    client = IntegrationClient.objects.filter(name=name).select_related("user").first()
    if client is None:
        user = get_user_model().objects.create_user(username=f"integration-{name}"[:150])
        user.set_unusable_password()
        user.save()
        client = IntegrationClient(name=name, user=user)
    client.user.groups.set([Group.objects.get(name=role)])
    client.lookup = lookup
    client.secret_hash = _hash(secret)
    client.revoked_at = None
    client.save()
    return f"{KEY_MARK}_{lookup}_{secret}"


def revoke_key(name: str) -> bool:
    return bool(
        IntegrationClient.objects.filter(name=name, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    )


def verify_key(presented: str) -> IntegrationClient | None:
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_MARK:
        return None
    _, lookup, secret = parts
    client = (
        IntegrationClient.objects.select_related("user")
        .filter(lookup=lookup, revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if client is None:
        _hash(secret)
        return None
    if not hmac.compare_digest(client.secret_hash, _hash(secret)):
        return None
    return client


class IntegrationKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <key>'")
        try:
            presented = header[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("key is not valid text") from exc
        if not presented.startswith(f"{KEY_MARK}_"):
            raise exceptions.AuthenticationFailed(
                "not an integration API key (device tokens are not accepted here)"
            )
        client = verify_key(presented)
        if client is None:
            raise exceptions.AuthenticationFailed("invalid or revoked integration API key")
        audit.attribute_to(client.user)
        now = timezone.now()
        if not client.last_used_at or now - client.last_used_at >= LAST_USED_RESOLUTION:
            IntegrationClient.objects.filter(pk=client.pk).update(last_used_at=now)
        return client.user, client

    def authenticate_header(self, request):
        return self.keyword
