"""The admin site: `is_staff` alone is not enough, the person also needs a role that manages
the site (biomed, facilities, admin), so a nurse flagged staff by mistake still cannot open it."""

from django.contrib.admin import AdminSite

from hospital.roles import ADMIN, BIOMED, FACILITIES, has_role

ADMIN_ROLES = (BIOMED, FACILITIES, ADMIN)


class WardwiseAdminSite(AdminSite):
    site_header = "Wardwise administration"
    site_title = "Wardwise admin"

    def has_permission(self, request) -> bool:
        return super().has_permission(request) and has_role(request.user, *ADMIN_ROLES)
