"""Threshold profiles that exist out of the box; docs/cold-chain.md cites each source."""

from django.db import migrations

PRESETS = [
    # slug, name, warn min, warn max, critical min, critical max, humidity min, max, source
    (
        "vaccine-refrigerator",
        "Vaccine refrigerator (2-8 °C)",
        2.0, 8.0, 0.0, 10.0, None, None,
        "CDC Vaccine Storage and Handling Toolkit: refrigerators 2-8 °C (36-46 °F)",
    ),
    (
        "vaccine-freezer",
        "Vaccine freezer (-50 to -15 °C)",
        -50.0, -15.0, -60.0, -12.0, None, None,
        "CDC Vaccine Storage and Handling Toolkit: freezers -50 to -15 °C (-58 to +5 °F)",
    ),
    (
        "blood-bank-refrigerator",
        "Blood-bank refrigerator (1-6 °C)",
        1.0, 6.0, 0.0, 8.0, None, None,
        "21 CFR 640.4 and AABB Standards: whole blood and red cells stored at 1-6 °C",
    ),
    (
        "pharmacy-refrigerator",
        "Pharmacy refrigerator (2-8 °C)",
        2.0, 8.0, 0.0, 10.0, None, None,
        "USP <659> Packaging and Storage Requirements: refrigerator 2-8 °C",
    ),
    (
        "ultra-low-freezer",
        "Ultra-low freezer (-90 to -60 °C)",
        -90.0, -60.0, -95.0, -55.0, None, None,
        "CDC/manufacturer ultra-cold storage for mRNA vaccines: -90 to -60 °C",
    ),
    (
        "room",
        "Room (15-25 °C, 20-60 % RH)",
        15.0, 25.0, 10.0, 30.0, 20.0, 60.0,
        "USP <659> controlled room temperature; ASHRAE 170 relative humidity 20-60 %",
    ),
]


def create_presets(apps, schema_editor):
    ThresholdProfile = apps.get_model("environment", "ThresholdProfile")
    for slug, name, low, high, critical_low, critical_high, rh_low, rh_high, source in PRESETS:
        ThresholdProfile.objects.update_or_create(
            slug=slug,
            defaults={
                "name": name,
                "temperature_min_c": low,
                "temperature_max_c": high,
                "temperature_critical_min_c": critical_low,
                "temperature_critical_max_c": critical_high,
                "humidity_min_pct": rh_low,
                "humidity_max_pct": rh_high,
                "source": source,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("environment", "0001_initial")]
    operations = [migrations.RunPython(create_presets, migrations.RunPython.noop)]
