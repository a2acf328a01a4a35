from django.contrib import admin

from environment.models import (
    EnvironmentReading,
    ReadingAnnotation,
    ReadingBatch,
    Sensor,
    SensorState,
    ThresholdProfile,
)


@admin.register(ThresholdProfile)
class ThresholdProfileAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "slug",
        "temperature_min_c",
        "temperature_max_c",
        "temperature_critical_min_c",
        "temperature_critical_max_c",
        "alarm_delay_s",
        "clear_hysteresis_s",
    )
    search_fields = ("name", "slug")


@admin.register(Sensor)
class SensorAdmin(admin.ModelAdmin):
    list_display = (
        "serial",
        "kind",
        "zone",
        "profile",
        "gateway",
        "expected_interval_s",
        "calibration_due",
        "is_active",
    )
    list_filter = ("kind", "profile", "is_active", "zone__floor", "escalation_policy")
    search_fields = ("serial", "contents", "zone__name")
    list_select_related = ("zone__floor__building", "profile", "gateway")
    raw_id_fields = ("gateway",)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Compliance records: viewable, never added, changed or deleted here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AnnotationInline(admin.TabularInline):
    model = ReadingAnnotation
    extra = 0
    fields = ("created_at", "author", "reason", "note", "corrected_temperature_c")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(EnvironmentReading)
class EnvironmentReadingAdmin(ReadOnlyAdmin):
    list_display = (
        "sensor",
        "ts",
        "temperature_c",
        "humidity_pct",
        "battery_pct",
        "door_open",
        "received_at",
    )
    list_filter = ("sensor__kind", "door_open")
    search_fields = ("sensor__serial",)
    date_hierarchy = "ts"
    list_select_related = ("sensor",)
    show_full_result_count = False
    inlines = [AnnotationInline]


@admin.register(ReadingAnnotation)
class ReadingAnnotationAdmin(admin.ModelAdmin):
    """Annotations are added here or through the API, signed by the person adding them."""

    list_display = ("reading", "author", "created_at", "reason", "corrected_temperature_c")
    search_fields = ("reading__sensor__serial", "reason", "note")
    raw_id_fields = ("reading",)
    readonly_fields = ("author", "created_at")
    list_select_related = ("reading__sensor", "author")

    def has_change_permission(self, request, obj=None):
        # An annotation is never edited, but the list needs the role's own permission.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        obj.author = request.user
        super().save_model(request, obj, form, change)


@admin.register(ReadingBatch)
class ReadingBatchAdmin(ReadOnlyAdmin):
    list_display = (
        "received_at",
        "scanner",
        "sensor",
        "batch_id",
        "accepted",
        "duplicates",
        "rejected",
    )
    search_fields = ("batch_id", "scanner__serial", "sensor__serial")
    list_select_related = ("scanner", "sensor")


@admin.register(SensorState)
class SensorStateAdmin(ReadOnlyAdmin):
    list_display = (
        "sensor",
        "last_ts",
        "last_received_at",
        "temperature_c",
        "battery_pct",
        "door_open",
        "pending_evaluation",
    )
    search_fields = ("sensor__serial",)
    exclude = ("monitor",)
