"""Environmental reading ingestion (CONTRACT.md section 4): a sensor's own token, or a scanner
gateway's for the sensors assigned to it. Same envelope, status codes and answer as the scanner
endpoint; the accepted readings are committed to the database, and run through the alert rules,
in one transaction before the `202` (environment.ingest)."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from environment import ingest
from environment.validation import EnvelopeError, validate_environment_batch
from hospital.devices import DeviceTokenAuthentication, IsSensorOrScannerDevice
from tracking.views import ErrorBody, IngestResult, bad_request, read_body, throttled

MAX_READINGS = 5000


class EnvironmentIngestView(APIView):
    authentication_classes = [DeviceTokenAuthentication]
    permission_classes = [IsSensorOrScannerDevice]
    parser_classes: list = []
    #: Devices read JSON; without the browsable API's HTML renderer each answer costs less.
    renderer_classes = [JSONRenderer]

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
        key = f"sensor:{device.sensor.pk}" if device.sensor else f"gateway:{device.scanner.pk}"
        limited = throttled(f"env-{key}")
        if limited:
            return limited
        now = timezone.now()
        try:
            body = read_body(request, settings.WARDWISE["MAX_BODY_BYTES"])
            batch = validate_environment_batch(body, now=now.timestamp(), max_readings=MAX_READINGS)
        except EnvelopeError as exc:
            return bad_request(str(exc))
        sensors = ingest.authorize(batch, sensor=device.sensor, scanner=device.scanner)
        outcome = ingest.store(
            batch, sensors, now=now, sensor=device.sensor, scanner=device.scanner
        )
        return Response(outcome.response(), status=202)
