"""The people who use Wardwise, as Django groups. Views and APIs check these by name."""

NURSE = "nurse"
BIOMED = "biomed"
FACILITIES = "facilities"
ADMIN = "admin"
ALL_ROLES = (NURSE, BIOMED, FACILITIES, ADMIN)


def has_role(user, *roles: str) -> bool:
    """Superusers pass every check; everyone else needs membership of one of `roles`."""
    if not user or not user.is_authenticated or not getattr(user, "is_active", False):
        return False
    if not hasattr(user, "groups"):
        return False  # a device principal, never a person
    if user.is_superuser:
        return True
    return user.groups.filter(name__in=roles).exists()
