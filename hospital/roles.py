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


#: What each role may do in the admin, as Django model permissions ("app_label.codename",
#: shell-style patterns) carried by the role's group; the admin site also needs is_staff and a
#: managing role (web/admin_site.py). Biomed manages equipment, gateways and maintenance;
#: facilities the cold chain and its alerts; admin everything, including people, roles, the
#: audit trail and integrations. Temperature readings are records: nobody may change them.
ROLE_MODEL_PERMISSIONS: dict[str, tuple[str, ...]] = {
    BIOMED: (
        "tracking.*",
        "workflows.*",
        "hospital.view_*",
        "environment.view_sensor",
    ),
    FACILITIES: (
        "environment.*",
        "alerts.*",
        "hospital.view_*",
        "tracking.view_scanner",
    ),
    ADMIN: ("*",),
}
NEVER_GRANTED = (
    "environment.add_environmentreading",
    "environment.change_environmentreading",
    "environment.delete_environmentreading",
    "auditlog.add_logentry",
    "auditlog.change_logentry",
    "auditlog.delete_logentry",
)


def grant_role_permissions(apps=None, schema_editor=None) -> None:
    """Give each role group exactly the model permissions of ROLE_MODEL_PERMISSIONS. Runs after
    every migrate (hospital.apps.DEFAULT_DATA), creating missing permission rows first, since
    the apps after this one have not had theirs created yet on a fresh database."""
    from fnmatch import fnmatchcase

    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    every = {
        f"{p.content_type.app_label}.{p.codename}": p
        for p in Permission.objects.select_related("content_type")
    }
    for role, patterns in ROLE_MODEL_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        granted = [
            perm
            for label, perm in every.items()
            if any(fnmatchcase(label, pattern) for pattern in patterns)
            and label not in NEVER_GRANTED
        ]
        group.permissions.set(granted)
