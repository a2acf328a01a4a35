"""The WSGI application of the device tier (gunicorn: `wardwise-http@`, compose `http`):
the three device endpoints (hospital.device_urls) behind only the middleware a token-
authenticated device request needs.

The people's middleware (sessions, CSRF, sign-in, messages, the sign-in lockout) guards what a
browser does with a session; a device presents a token its view checks, so for devices that
stack only costs CPU. Kept, in the full stack's order: the security headers (SecurityMiddleware,
X-Frame-Options, web.middleware's Permissions-Policy) and Content-Length, so answers carry the
same headers, and the audit context for environment uploads, the one device request that changes
audited rows (the alerts its readings open), so those entries name the sensor's address as under
the full stack. Every other path answers a JSON 404: reaching this port never exposes the
people's site without its protections.

An environment upload whose client has closed the connection by the time a thread gets to it
(gunicorn queues requests while its threads are busy; a sensor gives up after its timeout and
closes) is not processed: it is answered `503` and nothing is stored, so an overloaded server
spends its time on requests that someone still waits for (AbandonedUploadMiddleware).
"""

import os
import socket

import django
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.http import JsonResponse
from django.utils.module_loading import import_string

from alerts import audit

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "hospital.device_wsgi.ContentLengthMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "hospital.device_wsgi.EnvironmentAuditMiddleware",
    "web.middleware.SecurityHeadersMiddleware",
    "hospital.device_wsgi.AbandonedUploadMiddleware",
]
URLCONF = "hospital.device_urls"
#: Requests that may change audited rows: an environment upload's readings open and escalate
#: alerts. Readings batches and heartbeats write only telemetry (ScannerHealth, token use).
AUDITED_PATHS = frozenset({"/api/v1/readings/environment/"})
#: Requests not served once their client has gone (AbandonedUploadMiddleware).
ABANDONABLE_PATHS = frozenset({"/api/v1/readings/environment/"})
ABANDONED_RETRY_AFTER_S = 1


def peer_closed(sock) -> bool:
    """Whether the client at the other end of `sock` has closed the connection: nothing left to
    read and end-of-stream (or a reset). gunicorn has already read the request's head and, for
    a small body, the body too (it reads in 8 KiB chunks); unread body bytes in the socket
    count as a live client, so the check errs on the side of serving."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False  # nothing to read, connection open: the client waits
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (OSError, ValueError):  # not a plain socket (TLS), or not a socket at all
        return False


class AbandonedUploadMiddleware:
    """An environment upload whose client closed the connection before a thread took it up is
    answered `503` (Retry-After) without being processed: nothing is stored, so the answer
    keeps the contract (a device resends what got no 2xx), and under overload the server's
    time goes to requests still waited for. Only under gunicorn, which puts the client socket
    in the environ (`gunicorn.socket`). A client that shuts down its sending side after the
    request while still reading (no HTTP client of the product does) counts as gone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        sock = request.META.get("gunicorn.socket")
        if sock is not None and request.path_info in ABANDONABLE_PATHS and peer_closed(sock):
            response = JsonResponse(
                {
                    "detail": "the client closed the connection before the upload was served; "
                    "nothing was stored"
                },
                status=503,
            )
            response.headers["Retry-After"] = str(ABANDONED_RETRY_AFTER_S)
            return response
        return self.get_response(request)


class ContentLengthMiddleware:
    """Content-Length, as CommonMiddleware sets it in the full stack (without it gunicorn would
    answer in chunks); CommonMiddleware's other work (slash redirects, www) has no place here."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))
        return response


class EnvironmentAuditMiddleware:
    """AuditlogMiddleware's context (request id, client address) for AUDITED_PATHS only, and
    there only around the work that changes audited rows (alerts.audit: the rule engine's
    general path enters it): its signal hook-up per request would record nothing elsewhere."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info not in AUDITED_PATHS:
            return self.get_response(request)
        with audit.pending(request):
            return self.get_response(request)


class DeviceRequest(WSGIRequest):
    """Resolved against the device URLconf, whatever ROOT_URLCONF says."""

    urlconf = URLCONF


class DeviceHandler(WSGIHandler):
    request_class = DeviceRequest

    def load_middleware(self, is_async=False):
        """BaseHandler.load_middleware over MIDDLEWARE instead of settings.MIDDLEWARE (all of
        it synchronous, none with view, template or exception hooks)."""
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(MIDDLEWARE):
            instance = import_string(path)(handler)
            hooks = ("process_view", "process_template_response", "process_exception")
            if any(hasattr(instance, hook) for hook in hooks):
                raise RuntimeError(f"{path}: hooks the device handler does not run")
            handler = convert_exception_to_response(instance)
        self._middleware_chain = handler


def get_device_application() -> DeviceHandler:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hospital.settings")
    django.setup(set_prefix=False)
    return DeviceHandler()


application = get_device_application()
