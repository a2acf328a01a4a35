"""Environmental reading ingestion (CONTRACT.md section 4): a sensor's own token, or a scanner
gateway's for the sensors assigned to it. Same envelope, status codes and answer as the scanner
endpoint; the accepted readings are committed to the database, and run through the alert rules,
in one transaction before the `202` (environment.ingest)."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from environment import ingest
from environment.validation import EnvelopeError, validate_environment_batch
from hospital.devices import DeviceView, IsSensorOrScannerDevice
from tracking.views import ErrorBody, IngestResult, bad_request, read_body


class EnvironmentIngestView(DeviceView):
    permission_classes = [IsSensorOrScannerDevice]

    @staticmethod
    def rate_key(token):
        if token.sensor_id:
            return f"env-sensor:{token.sensor_id}"
        return f"env-gateway:{token.scanner_id}"

    @extend_schema(
        summary="Upload environmental readings (sensors, or gateways relaying them)",
        request=inline_serializer(
            "EnvironmentBatch",
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
            503: OpenApiResponse(ErrorBody, description="database down; retry"),
        },
    )
    def post(self, request):
        device = request.user
        now = timezone.now()
        try:
            limits = settings.WARDWISE
            body = read_body(request, limits["MAX_BODY_BYTES"])
            batch = validate_environment_batch(
                body, now=now.timestamp(), max_readings=limits["MAX_BATCH_READINGS"]
            )
        except EnvelopeError as exc:
            return bad_request(str(exc))
        sensors = ingest.authorize(batch, sensor=device.sensor, scanner=device.scanner)
        outcome = ingest.store(
            batch, sensors, now=now, sensor=device.sensor, scanner=device.scanner
        )
        return Response(outcome.response(), status=202)
