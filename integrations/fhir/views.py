"""FHIR R4 read endpoints under /fhir/: `metadata`, `<type>?<search>` and `<type>/<id>`.

Thin views over integrations.fhir.search and .mapping. Every answer, errors included, is
`application/fhir+json`; errors are OperationOutcome resources. Authentication: an integration
client's API key (`Authorization: Bearer wwi_...`) or a signed-in session; device tokens are
refused. Every clinical role may read (the same data the floor map shows).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from hospital.api import exception_handler as api_exception_handler
from hospital.permissions import ClinicalStaff
from integrations.fhir.search import (
    COMMON_PARAMS,
    DEFAULT_COUNT,
    MAX_COUNT,
    PROVIDERS,
    NotFound,
    SearchError,
)
from integrations.keys import IntegrationKeyAuthentication

FHIR_VERSION = "4.0.1"
ISSUE_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 503: "transient"}


class FhirJsonRenderer(JSONRenderer):
    media_type = "application/fhir+json"
    format = "json"
    charset = "utf-8"


class AlwaysFhirJson(BaseContentNegotiation):
    """FHIR JSON whatever the Accept header says (json is the only format served)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def operation_outcome(status: int, message: str) -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": ISSUE_CODES.get(status, "processing"),
                "diagnostics": message,
            }
        ],
    }


def fhir_exception_handler(exc, context):
    response = api_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data if isinstance(response.data, dict) else {}
    message = str(data.get("detail") or exc)
    response.data = operation_outcome(response.status_code, message)
    return response


@extend_schema(exclude=True)
class FhirView(APIView):
    """FHIR has its own description (GET /fhir/metadata); it stays out of the OpenAPI schema."""

    authentication_classes = [IntegrationKeyAuthentication, SessionAuthentication]
    permission_classes = [ClinicalStaff]
    renderer_classes = [FhirJsonRenderer]
    content_negotiation_class = AlwaysFhirJson
    parser_classes: list = []

    def get_exception_handler(self):
        return fhir_exception_handler

    def provider(self, resource_type: str):
        provider = PROVIDERS.get(resource_type)
        if provider is None:
            raise exceptions.NotFound(
                f"resource type {resource_type!r} is not supported here "
                f"(supported: {', '.join(sorted(PROVIDERS))})"
            )
        return provider


@extend_schema(exclude=True)
class ReadView(FhirView):
    def get(self, request, resource_type: str, ident: str):
        provider = self.provider(resource_type)
        try:
            return Response(provider.read(ident))
        except NotFound as exc:
            raise exceptions.NotFound(str(exc)) from None


@extend_schema(exclude=True)
class SearchView(FhirView):
    def get(self, request, resource_type: str):
        provider = self.provider(resource_type)
        params = {
            name: request.query_params.getlist(name)
            for name in request.query_params
            if name in provider.params or name in COMMON_PARAMS
        }
        try:
            count = _int_param(params, "_count", DEFAULT_COUNT, 0, MAX_COUNT)
            offset = _int_param(params, "_offset", 0, 0, 10**9)
            page = provider.search(params, offset, count)
        except SearchError as exc:
            return Response(operation_outcome(400, str(exc)), status=400)
        base = request.build_absolute_uri(f"/fhir/{resource_type}")
        kept = [
            (name, value)
            for name, values in params.items()
            if name not in {"_count", "_offset"}
            for value in values
        ]

        def link(relation: str, at: int) -> dict:
            query = urlencode([*kept, ("_count", count), ("_offset", at)])
            return {"relation": relation, "url": f"{base}?{query}"}

        links = [link("self", offset), link("first", 0)]
        if count and offset + count < page.total:
            links.append(link("next", offset + count))
        if count and offset > 0:
            links.append(link("previous", max(0, offset - count)))
        if count and page.total:
            links.append(link("last", ((page.total - 1) // count) * count))
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "timestamp": timezone.now().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "total": page.total,
            "link": links,
            "entry": [
                {
                    "fullUrl": request.build_absolute_uri(
                        f"/fhir/{resource['resourceType']}/{resource['id']}"
                    ),
                    "resource": resource,
                    "search": {"mode": "match"},
                }
                for resource in page.resources
            ],
        }
        if not bundle["entry"]:
            del bundle["entry"]
        return Response(bundle)


def _int_param(params: dict, name: str, default: int, low: int, high: int) -> int:
    values = params.get(name)
    if not values:
        return default
    try:
        value = int(values[-1])
    except ValueError:
        raise SearchError(f"{name} must be an integer") from None
    if value < low:
        raise SearchError(f"{name} must be at least {low}")
    return min(value, high)


@extend_schema(exclude=True)
class MetadataView(FhirView):
    """The CapabilityStatement. Public, as FHIR clients fetch it before authenticating."""

    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request):
        return Response(capability_statement(request.build_absolute_uri("/fhir/")))


def capability_statement(base_url: str) -> dict:
    resources = []
    for resource_type, provider in sorted(PROVIDERS.items()):
        search_params = [
            {
                "name": "_id",
                "type": "token",
                "definition": "http://hl7.org/fhir/SearchParameter/Resource-id",
            }
        ]
        search_params += [
            {"name": name, "type": kind} for name, kind in sorted(provider.params.items())
        ]
        resources.append(
            {
                "type": resource_type,
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "searchParam": search_params,
            }
        )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-26",
        "publisher": "Wardwise",
        "kind": "instance",
        "software": {"name": "Wardwise"},
        "implementation": {"description": "Wardwise FHIR read API", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Read-only. Paging with _count (at most 500) and _offset; follow the "
                    "Bundle's next link."
                ),
                "security": {
                    "description": (
                        "Authorization: Bearer <integration API key> (manage.py "
                        "integration_key NAME --role ROLE), or a signed-in session."
                    )
                },
                "resource": resources,
            }
        ],
    }
