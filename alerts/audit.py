"""The audit context of a device request, entered only around the work that changes audited rows.

django-auditlog's middleware gives every request a correlation id and the client's address for
the log entries it causes; entering that context costs a signal hook-up per request. An
environment upload changes audited rows (alerts and their events) only when the rule engine
takes its general path, a small share of uploads. So the device application records the request
(`pending`) and the general path enters auditlog's context for it (`entered`): the entries an
upload causes carry the same address and correlation id as under auditlog's middleware, and an
upload that changes nothing audited costs no hook-up."""

from __future__ import annotations

import contextlib
from contextvars import ContextVar

from auditlog.cid import correlation_id, set_cid
from auditlog.context import set_extra_data
from auditlog.middleware import AuditlogMiddleware

_request: ContextVar = ContextVar("wardwise_audit_request", default=None)


@contextlib.contextmanager
def pending(request):
    """While the request is served: audited changes made inside `entered()` are its."""
    token = _request.set(request)
    try:
        yield
    finally:
        _request.reset(token)


@contextlib.contextmanager
def entered():
    """auditlog's request context for the pending request, as AuditlogMiddleware sets it; a
    no-op without one (workers, commands, the full stack, where AuditlogMiddleware sets it)."""
    request = _request.get()
    if request is None:
        yield
        return
    previous = correlation_id.get()
    set_cid(request)
    try:
        with set_extra_data(context_data=AuditlogMiddleware(None).get_extra_data(request)):
            yield
    finally:
        correlation_id.set(previous)
