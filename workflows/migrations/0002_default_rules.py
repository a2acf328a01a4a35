"""Zone rules every installation starts with, so asset status mostly maintains itself out of the
box (docs/workflows.md). Idempotent: re-run after every migrate and flush (hospital.apps)."""

from django.db import migrations

DEFAULT_RULES = [
    {
        "name": "Soiled utility: needs cleaning",
        "trigger": "enter",
        "zone_kind": "soiled-utility",
        "from_statuses": ["available", "in-use"],
        "to_status": "needs-cleaning",
        "dwell_min": 0,
        "description": "Equipment brought to a soiled utility room is waiting for reprocessing.",
    },
    {
        "name": "Clean utility after cleaning: available",
        "trigger": "enter",
        "zone_kind": "clean-utility",
        "from_statuses": ["needs-cleaning"],
        "to_status": "available",
        "dwell_min": 0,
        "description": "Equipment that needed cleaning and reaches a clean utility room is clean.",
    },
    {
        "name": "Patient room for 30 minutes: in use",
        "trigger": "dwell",
        "zone_kind": "room",
        "from_statuses": ["available"],
        "to_status": "in-use",
        "dwell_min": 30,
        "description": "Available equipment that stays in a patient room is serving the patient.",
    },
]


def create_rules(apps, schema_editor):
    ZoneRule = apps.get_model("workflows", "ZoneRule")
    if ZoneRule.objects.exists():
        return
    for rule in DEFAULT_RULES:
        ZoneRule.objects.get_or_create(name=rule["name"], defaults=rule)


class Migration(migrations.Migration):
    dependencies = [("workflows", "0001_initial")]
    operations = [migrations.RunPython(create_rules, migrations.RunPython.noop)]
