import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    """The sensor-health thresholds that were code defaults (environment.rules.Limits) become
    per-profile settings, every profile keeping the values it had."""

    dependencies = [
        ("environment", "0004_reading_brin_and_immutability"),
    ]

    operations = [
        migrations.AddField(
            model_name="thresholdprofile",
            name="offline_after_intervals",
            field=models.PositiveSmallIntegerField(
                default=3,
                help_text="Expected reporting intervals without a reading before 'sensor offline'.",
                validators=[django.core.validators.MinValueValidator(1)],
            ),
        ),
        migrations.AddField(
            model_name="thresholdprofile",
            name="low_battery_pct",
            field=models.FloatField(
                default=20.0,
                help_text="Battery at or below this raises a low-battery warning.",
                validators=[
                    django.core.validators.MinValueValidator(0.0),
                    django.core.validators.MaxValueValidator(100.0),
                ],
            ),
        ),
        migrations.AddField(
            model_name="thresholdprofile",
            name="critical_battery_pct",
            field=models.FloatField(
                default=10.0,
                help_text="Battery at or below this makes the low-battery alert critical.",
                validators=[
                    django.core.validators.MinValueValidator(0.0),
                    django.core.validators.MaxValueValidator(100.0),
                ],
            ),
        ),
        migrations.AddField(
            model_name="thresholdprofile",
            name="plausible_min_c",
            field=models.FloatField(
                default=-100.0, help_text="Colder than this is a probe fault, not a temperature."
            ),
        ),
        migrations.AddField(
            model_name="thresholdprofile",
            name="plausible_max_c",
            field=models.FloatField(
                default=70.0,
                help_text="Warmer than this is a probe fault (e.g. 85 °C error codes).",
            ),
        ),
    ]
