"""The people who use Wardwise, as Django groups. Views and APIs check these by name."""

NURSE = "nurse"
BIOMED = "biomed"
FACILITIES = "facilities"
ADMIN = "admin"
ALL_ROLES = (NURSE, BIOMED, FACILITIES, ADMIN)


def has_role(user, *roles: str) -> bool:
    """Superusers pass every check; everyone else needs membership of one of `roles`."""
    if not user or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name__in=roles).exists()
