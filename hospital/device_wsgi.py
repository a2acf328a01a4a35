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
"""

import os

import django
from auditlog.middleware import AuditlogMiddleware
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.utils.module_loading import import_string

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "hospital.device_wsgi.ContentLengthMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "hospital.device_wsgi.EnvironmentAuditMiddleware",
    "web.middleware.SecurityHeadersMiddleware",
]
URLCONF = "hospital.device_urls"
#: Requests that may change audited rows: an environment upload's readings open and escalate
#: alerts. Readings batches and heartbeats write only telemetry (ScannerHealth, token use).
AUDITED_PATHS = frozenset({"/api/v1/readings/environment/"})


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


class EnvironmentAuditMiddleware(AuditlogMiddleware):
    """AuditlogMiddleware (request id, client address) for AUDITED_PATHS only: elsewhere its
    signal hook-up per request (~25 us) would record nothing."""

    def __call__(self, request):
        if request.path_info not in AUDITED_PATHS:
            return self.get_response(request)
        return super().__call__(request)


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
