"""Security headers Django does not set itself, on every response.

- Content-Security-Policy on every HTML page: scripts, styles and live data only from our own
  host, no inline script anywhere. The pages of this app and the sign-in page get the strict
  policy; the admin and the API's HTML pages (Swagger UI, served from the pinned npm package,
  and DRF's browsable API) also allow inline `style` attributes, which their templates use.
  Kept as a few lines here rather than django-csp: two fixed policies by path, no nonces.
- Permissions-Policy on every response: no camera, microphone, geolocation, payment or USB for
  any page (the nurse's phone locates nothing; locations come from the tags).

Also the client address for the sign-in lockout (django-axes) behind the reverse proxy.
"""

from __future__ import annotations

from django.conf import settings

BASE = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
]
CSP = "; ".join(BASE)
#: The admin's templates (and the CSV import's) and Swagger UI set inline `style` attributes;
#: scripts stay our own files only.
RELAXED_STYLE_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
RELAXED_PREFIXES = ("/admin/", "/api/")
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "camera",
        "microphone",
        "geolocation",
        "payment",
        "usb",
        "bluetooth",
        "serial",
        "hid",
        "interest-cohort",
    )
)


def policy_for(path: str) -> str:
    return RELAXED_STYLE_CSP if path.startswith(RELAXED_PREFIXES) else CSP


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if response.get("Content-Type", "").startswith("text/html"):
            response.headers.setdefault("Content-Security-Policy", policy_for(request.path))
        return response


def client_ip(request) -> str | None:
    """REMOTE_ADDR, or behind WARDWISE_PROXY_HOPS reverse proxies the X-Forwarded-For entry that
    the outermost proxy appended (the address it saw, which the client cannot forge)."""
    hops = getattr(settings, "WARDWISE_PROXY_HOPS", 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if hops > 0 and forwarded:
        entries = [e.strip() for e in forwarded.split(",") if e.strip()]
        if len(entries) >= hops:
            return entries[-hops]
    return request.META.get("REMOTE_ADDR")
