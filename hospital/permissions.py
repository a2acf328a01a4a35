"""Role checks for DRF views and Channels consumers. Every endpoint names the roles it serves."""

from __future__ import annotations

from rest_framework import permissions

from hospital.roles import ADMIN, BIOMED, FACILITIES, NURSE, has_role


def role_permission(*roles: str) -> type[permissions.BasePermission]:
    """A permission class admitting signed-in people with one of `roles` (superusers always)."""

    class HasRole(permissions.BasePermission):
        message = f"this needs one of the roles: {', '.join(roles)}"

        def has_permission(self, request, view) -> bool:
            return has_role(request.user, *roles)

    HasRole.__name__ = f"HasRole_{'_'.join(roles)}"
    return HasRole


ClinicalStaff = role_permission(NURSE, BIOMED, FACILITIES, ADMIN)
EquipmentManagers = role_permission(BIOMED, ADMIN)
FacilitiesStaff = role_permission(FACILITIES, ADMIN)
