"""API-wide error handling: a gateway must be able to tell 'retry later' from 'fix your request'.

Database or Redis outages become `503 Service Unavailable` with `Retry-After` (never a 500), so a
scanner keeps its spooled readings and tries again. A value the database refuses (DataError: a
time-zone offset PostgreSQL cannot store, a number out of its range; found by fuzzing the
filters) is the client's mistake: `400`. Everything else is DRF's usual handling.
"""

from __future__ import annotations

import logging

import redis
from django.db import DatabaseError, DataError, InterfaceError, OperationalError
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
    if isinstance(exc, DataError):
        log.info("answering 400: the database refused a value (%s)", exc)
        return Response({"detail": "a value in the request is out of range"}, status=400)
    return drf_exception_handler(exc, context)
