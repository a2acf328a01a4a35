"""Asset types that exist out of the box (CONTRACT.md section 1)."""

from django.db import migrations

DEFAULT_TYPES = [
    ("infusion-pump", "Infusion pump", "parked"),
    ("wheelchair", "Wheelchair", "roaming"),
    ("patient-monitor", "Patient monitor", "parked"),
    ("bed", "Hospital bed", "roaming"),
    ("ventilator", "Ventilator", "parked"),
    ("defibrillator", "Defibrillator", "parked"),
]


def create_types(apps, schema_editor):
    AssetType = apps.get_model("tracking", "AssetType")
    for slug, name, mobility in DEFAULT_TYPES:
        AssetType.objects.get_or_create(slug=slug, defaults={"name": name, "mobility": mobility})


class Migration(migrations.Migration):
    dependencies = [("tracking", "0001_initial")]
    operations = [migrations.RunPython(create_types, migrations.RunPython.noop)]
