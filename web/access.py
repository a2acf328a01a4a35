"""Who may open which page. The REST endpoints use hospital.permissions; pages use these."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render

from hospital.roles import ADMIN, BIOMED, FACILITIES, NURSE, has_role
from web.admin_site import ADMIN_ROLES

CLINICAL = (NURSE, BIOMED, FACILITIES, ADMIN)
CONSOLE = (FACILITIES, ADMIN)


def role_required(*roles: str):
    """Signed-out visitors go to the sign-in page; signed-in people without one of `roles` get
    a 403 page that says which roles may enter (not a redirect loop to the sign-in page)."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not has_role(request.user, *roles):
                return render(request, "web/forbidden.html", {"roles": roles}, status=403)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def pages_for(user) -> dict[str, bool]:
    """Which navigation entries the person sees."""
    return {
        "map": has_role(user, *CLINICAL),
        "console": has_role(user, *CONSOLE),
        "admin": bool(getattr(user, "is_staff", False)) and has_role(user, *ADMIN_ROLES),
    }
