"""API-wide error handling: a gateway must be able to tell 'retry later' from 'fix your request'.

Database or Redis outages become `503 Service Unavailable` with `Retry-After` (never a 500), so a
scanner keeps its spooled readings and tries again; everything else is DRF's usual handling.
"""

from __future__ import annotations

import logging

import redis
from django.db import DatabaseError, InterfaceError, OperationalError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, redis.ConnectionError, redis.TimeoutError)


def service_unavailable(component: str) -> Response:
    return Response(
        {"detail": f"{component} is unavailable; retry later", "retry_after_s": RETRY_AFTER_S},
        status=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def exception_handler(exc, context):
    if isinstance(exc, UNAVAILABLE_ERRORS) or (
        isinstance(exc, DatabaseError) and "connection" in str(exc).lower()
    ):
        component = "redis" if isinstance(exc, redis.RedisError) else "database"
        log.warning("answering 503: %s unavailable (%s)", component, exc)
        return service_unavailable(component)
    return drf_exception_handler(exc, context)
