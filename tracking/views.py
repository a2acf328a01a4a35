"""Ingestion endpoints for scanner gateways (CONTRACT.md section 3) and their heartbeats.

The request does only what must happen before `202`: authenticate and rate-limit (one Redis round
trip, hospital.devices.DeviceView), read the body and hand it to tracking.intake (validation,
admission, the Redis bus, the shards' tasks), which the MQTT bridge shares. Localization runs in
workers. Gunicorn serves these views through hospital.device_wsgi.
"""

from __future__ import annotations

import json
import math

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from hospital import observability
from hospital.devices import DeviceView, IsScannerDevice
from tracking.intake import EnvelopeError, Overloaded, accept_rssi_batch
from tracking.models import ScannerHealth

IngestResult = inline_serializer(
    "IngestResult",
    {
        "accepted": serializers.IntegerField(),
        "duplicates": serializers.IntegerField(),
        "rejected": serializers.ListField(child=serializers.DictField()),
        "batch": serializers.CharField(allow_null=True),
        "duplicate_batch": serializers.BooleanField(),
    },
)
ErrorBody = inline_serializer("ErrorBody", {"detail": serializers.CharField()})
RetryBody = inline_serializer(
    "RetryBody", {"detail": serializers.CharField(), "retry_after_s": serializers.IntegerField()}
)


def bad_request(message: str) -> Response:
    return Response({"detail": message}, status=400)


def read_body(request, limit: int) -> bytes:
    """The raw body, refused (EnvelopeError) beyond `limit` bytes before reading it all."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit:
        raise EnvelopeError(f"body of {int(declared)} bytes is larger than {limit} bytes")
    try:
        body = request.body
    except RequestDataTooBig:
        raise EnvelopeError(f"body is larger than {limit} bytes") from None
    if len(body) > limit:
        raise EnvelopeError(f"body of {len(body)} bytes is larger than {limit} bytes")
    return body


def overloaded(exc: Overloaded) -> Response:
    """A 503 in the shape hospital.api gives an outage: to the gateway both mean the same, keep
    the batch and resend it after Retry-After."""
    return Response(
        {"detail": str(exc), "retry_after_s": exc.retry_after_s},
        status=503,
        headers={"Retry-After": str(exc.retry_after_s)},
    )


class RssiIngestView(DeviceView):
    permission_classes = [IsScannerDevice]

    @staticmethod
    def rate_key(token):
        return f"scanner:{token.scanner_id}" if token.scanner_id else None

    @extend_schema(
        summary="Upload a batch of RSSI readings (scanner gateways)",
        request=inline_serializer(
            "RssiBatch",
            {
                "batch": serializers.CharField(required=False),
                "readings": serializers.ListField(child=serializers.DictField()),
            },
        ),
        responses={
            202: IngestResult,
            400: ErrorBody,
            401: ErrorBody,
            429: ErrorBody,
            503: OpenApiResponse(
                RetryBody,
                description=(
                    "nothing of the batch was kept; resend it after Retry-After (seconds): the "
                    "database or Redis is down, or the workers are more than "
                    "WARDWISE_MAX_BACKLOG_S behind on a shard the batch touches"
                ),
            ),
        },
    )
    def post(self, request):
        scanner = request.user.scanner
        try:
            body = read_body(request, settings.WARDWISE["MAX_BODY_BYTES"])
        except EnvelopeError as exc:
            observability.incr("batches_total", outcome="malformed")
            return bad_request(str(exc))
        try:
            result = accept_rssi_batch(scanner, body)
        except EnvelopeError as exc:
            return bad_request(str(exc))
        except Overloaded as exc:
            return overloaded(exc)
        return Response(result, status=202)


HEARTBEAT_FIELDS = {
    "agent_version": str,
    "uptime_s": (int, float),
    "spool_depth": int,
    "dropped_evicted": int,
    "dropped_poison": int,
}
MAX_HEARTBEAT_BYTES = 16 * 1024


class HeartbeatView(DeviceView):
    permission_classes = [IsScannerDevice]

    @staticmethod
    def rate_key(token):
        return f"heartbeat:{token.scanner_id}" if token.scanner_id else None

    @extend_schema(
        summary="Report a scanner agent's health (version, uptime, spool depth)",
        request=inline_serializer(
            "Heartbeat",
            {
                "agent_version": serializers.CharField(),
                "uptime_s": serializers.FloatField(),
                "spool_depth": serializers.IntegerField(),
                "dropped_evicted": serializers.IntegerField(required=False),
                "dropped_poison": serializers.IntegerField(required=False),
            },
        ),
        responses={204: None, 400: ErrorBody, 401: ErrorBody, 429: ErrorBody},
    )
    def post(self, request):
        scanner = request.user.scanner
        try:
            body = read_body(request, MAX_HEARTBEAT_BYTES)
            document = json.loads(body)
        except EnvelopeError as exc:
            return bad_request(str(exc))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return bad_request("body is not valid JSON")
        if not isinstance(document, dict):
            return bad_request("body must be a JSON object")
        for name, kind in HEARTBEAT_FIELDS.items():
            value = document.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, kind):
                return bad_request(f"{name} has the wrong type")
            if isinstance(value, (int, float)) and (not math.isfinite(value) or value < 0):
                return bad_request(f"{name} must be a non-negative number")
        if len(str(document.get("agent_version", ""))) > 64:
            return bad_request("agent_version must be at most 64 characters")
        dropped = [document.get("dropped_evicted"), document.get("dropped_poison")]
        ScannerHealth.objects.update_or_create(
            scanner=scanner,
            defaults={
                "online": True,
                "agent_version": document.get("agent_version", ""),
                "uptime_s": document.get("uptime_s"),
                "spool_depth": document.get("spool_depth"),
                "spool_dropped": sum(d for d in dropped if d is not None)
                if any(d is not None for d in dropped)
                else None,
                "last_heartbeat_at": timezone.now(),
                "details": document,
            },
        )
        return Response(status=204)
