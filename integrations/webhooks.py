"""Delivering webhook events: signed POSTs, retried with exponential back-off (docs/webhooks.md).

Each attempt sends the same body and event id with a fresh timestamp, signed as
`X-Wardwise-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. Receivers
check the signature, refuse timestamps older than a few minutes (replay protection) and
de-duplicate on `X-Wardwise-Delivery` (retries after a timeout may deliver twice).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
import urllib.error
import urllib.request
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from integrations.models import DeliveryState, WebhookDelivery

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Wardwise-Signature"
TIMESTAMP_HEADER = "X-Wardwise-Timestamp"
MAX_ERROR_CHARS = 500


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify_signature(
    secret: str, timestamp: str, body: bytes, presented: str, *, tolerance_s: int = 300, now=None
) -> bool:
    """What a receiver does (and what the tests and docs/webhooks.md use)."""
    try:
        moment = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((now or time.time()) - moment) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, moment, body), presented or "")


def backoff_s(attempts: int) -> float:
    """Delay before the next attempt after `attempts` failures: base * 2^(n-1), capped, with
    up to 10 % jitter so a receiver coming back is not hit by every retry at once."""
    base = settings.WARDWISE_WEBHOOKS["RETRY_BASE_S"]
    cap = settings.WARDWISE_WEBHOOKS["RETRY_MAX_S"]
    delay = min(base * 2 ** max(attempts - 1, 0), cap)
    return delay * (1 + random.random() * 0.1)


def encode(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def post(url: str, body: bytes, headers: dict, timeout_s: float) -> tuple[int | None, str]:
    """(HTTP status or None, error text). Only http(s) URLs are ever opened."""
    if urlsplit(url).scheme not in {"http", "https"}:
        return None, f"refusing to post to {url!r}: not http(s)"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310  # nosec B310
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return None, str(getattr(exc, "reason", exc))


def attempt(delivery_id: int) -> float | None:
    """Try one pending delivery once. Returns the delay before the next try, or None when it
    is settled (delivered, given up, or not pending any more)."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .select_related("webhook")
            .filter(pk=delivery_id, state=DeliveryState.PENDING)
            .first()
        )
        if delivery is None:
            return None
        webhook = delivery.webhook
        if not webhook.is_active:
            delivery.state = DeliveryState.FAILED
            delivery.last_error = "webhook deactivated"
            delivery.save(update_fields=["state", "last_error"])
            return None
        body = encode(delivery.payload)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Wardwise-Webhooks/1",
            "X-Wardwise-Event": delivery.event_type,
            "X-Wardwise-Delivery": str(delivery.event_id),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(webhook.secret, timestamp, body),
        }
        status, error = post(webhook.url, body, headers, webhook.timeout_s)
        now = timezone.now()
        delivery.attempts += 1
        delivery.last_status = status
        delivery.last_error = error[:MAX_ERROR_CHARS]
        delay = None
        if status is not None and 200 <= status < 300:
            delivery.state = DeliveryState.DELIVERED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
        elif delivery.attempts >= webhook.max_attempts:
            delivery.state = DeliveryState.FAILED
            delivery.next_attempt_at = None
            log.warning(
                "webhook %s gave up on %s after %d attempts: %s",
                webhook,
                delivery.event_id,
                delivery.attempts,
                error,
            )
        else:
            delay = backoff_s(delivery.attempts)
            delivery.next_attempt_at = now + timedelta(seconds=delay)
        delivery.save()
    return delay


def due_deliveries(now=None, grace_s: float = 60.0) -> list[int]:
    """Pending deliveries whose retry is overdue (their queued task was lost with a worker)."""
    now = now or timezone.now()
    overdue = now - timedelta(seconds=grace_s)
    never_tried = Q(next_attempt_at__isnull=True, created_at__lte=overdue)
    return list(
        WebhookDelivery.objects.filter(
            Q(next_attempt_at__lte=overdue) | never_tried, state=DeliveryState.PENDING
        ).values_list("pk", flat=True)[:1000]
    )
