from django.contrib import admin

from environment.models import Sensor, ThresholdProfile


@admin.register(ThresholdProfile)
class ThresholdProfileAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "slug",
        "temperature_min_c",
        "temperature_max_c",
        "alarm_delay_s",
    )
    search_fields = ("name", "slug")


@admin.register(Sensor)
class SensorAdmin(admin.ModelAdmin):
    list_display = ("serial", "kind", "zone", "profile", "expected_interval_s", "is_active")
    list_filter = ("kind", "profile", "is_active", "zone__floor")
    search_fields = ("serial", "contents", "zone__name")
    list_select_related = ("zone__floor__building", "profile")
