"""Ingestion endpoints for scanner gateways (CONTRACT.md section 3) and their heartbeats.

The request does only what must happen before `202`: authenticate, validate, append the accepted
readings to the Redis bus, and queue the shards' processing tasks. Localization runs in workers.
"""

from __future__ import annotations

import json
import math
import time

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db.models import F
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from hospital import observability, ratelimit
from hospital.devices import DeviceTokenAuthentication, IsScannerDevice
from tracking import bus, tasks
from tracking.ingestion import EnvelopeError, validate_rssi_batch
from tracking.models import ScannerHealth

BATCH_MEMORY_S = 24 * 3600

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


def throttled(device_key: str) -> Response | None:
    allowed, wait = ratelimit.allow(device_key, settings.WARDWISE["DEVICE_RATE_PER_S"])
    if allowed:
        return None
    return Response(
        {"detail": f"too many requests from this device; retry after {wait} s"},
        status=429,
        headers={"Retry-After": str(wait)},
    )


class RssiIngestView(APIView):
    authentication_classes = [DeviceTokenAuthentication]
    permission_classes = [IsScannerDevice]
    parser_classes: list = []

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
            503: OpenApiResponse(ErrorBody, description="database or Redis down; retry"),
        },
    )
    def post(self, request):
        scanner = request.user.scanner
        limited = throttled(f"scanner:{scanner.pk}")
        if limited:
            return limited
        limits = settings.WARDWISE
        now = time.time()
        try:
            body = read_body(request, limits["MAX_BODY_BYTES"])
            batch = validate_rssi_batch(
                body,
                now=now,
                max_readings=limits["MAX_BATCH_READINGS"],
                max_future_s=limits["MAX_FUTURE_SKEW_S"],
                max_age_s=limits["MAX_READING_AGE_S"],
            )
        except EnvelopeError as exc:
            observability.incr("batches_total", outcome="malformed")
            return bad_request(str(exc))

        client = bus.client()
        batch_key = None
        if batch.batch_id is not None:
            batch_key = f"ww:batch:{scanner.pk}:{batch.batch_id}"
            if not client.set(batch_key, "pending", nx=True, ex=BATCH_MEMORY_S):
                return self._resent(client.get(batch_key), batch.batch_id)
        result = {
            "accepted": len(batch.readings),
            "duplicates": 0,
            "rejected": batch.rejected,
            "batch": batch.batch_id,
            "duplicate_batch": False,
        }
        try:
            shards = bus.publish(scanner.serial, batch.readings, now)
        except Exception:
            if batch_key:
                client.delete(batch_key)
            raise
        if batch_key:
            client.set(batch_key, json.dumps(result), ex=BATCH_MEMORY_S)
        self._record(scanner, len(batch.readings), len(batch.rejected))
        observability.incr("batches_total", outcome="accepted")
        observability.incr("readings_accepted_total", len(batch.readings), kind="rssi")
        if batch.rejected:
            observability.incr("readings_rejected_total", len(batch.rejected), kind="rssi")
        for shard in shards:
            tasks.schedule(shard)
        return Response(result, status=202)

    @staticmethod
    def _resent(stored: bytes | None, batch_id: str) -> Response:
        """A batch seen before: nothing is counted again; answer what the first one got."""
        observability.incr("batches_total", outcome="duplicate")
        first = json.loads(stored) if stored and stored != b"pending" else {}
        return Response(
            {
                "accepted": 0,
                "duplicates": first.get("accepted", 0),
                "rejected": first.get("rejected", []),
                "batch": batch_id,
                "duplicate_batch": True,
            },
            status=202,
        )

    @staticmethod
    def _record(scanner, accepted: int, rejected: int) -> None:
        now = timezone.now()
        updated = ScannerHealth.objects.filter(scanner=scanner).update(
            online=True,
            last_batch_at=now,
            readings_accepted=F("readings_accepted") + accepted,
            readings_rejected=F("readings_rejected") + rejected,
        )
        if not updated:
            ScannerHealth.objects.get_or_create(
                scanner=scanner,
                defaults={
                    "online": True,
                    "last_batch_at": now,
                    "readings_accepted": accepted,
                    "readings_rejected": rejected,
                },
            )


HEARTBEAT_FIELDS = {
    "agent_version": str,
    "uptime_s": (int, float),
    "spool_depth": int,
    "dropped_evicted": int,
    "dropped_poison": int,
}
MAX_HEARTBEAT_BYTES = 16 * 1024


class HeartbeatView(APIView):
    authentication_classes = [DeviceTokenAuthentication]
    permission_classes = [IsScannerDevice]
    parser_classes: list = []

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
        limited = throttled(f"heartbeat:{scanner.pk}")
        if limited:
            return limited
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
