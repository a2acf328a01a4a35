"""Biomed and administrators configure the workflows here (docs/workflows.md)."""

from django.contrib import admin, messages

from workflows import maintenance
from workflows.models import (
    BatterySample,
    Geofence,
    MaintenanceDue,
    MaintenanceSchedule,
    ParLevel,
    RecallCampaign,
    RecallUnit,
    StatusChange,
    WorkOrder,
    ZoneGroup,
    ZoneRule,
)


@admin.register(ZoneRule)
class ZoneRuleAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "is_active",
        "trigger",
        "zone_kind",
        "zone",
        "from_statuses",
        "to_status",
        "dwell_min",
    )
    list_filter = ("is_active", "trigger", "zone_kind", "to_status")
    search_fields = ("name", "description")


@admin.register(StatusChange)
class StatusChangeAdmin(admin.ModelAdmin):
    """The status history is evidence: read only."""

    list_display = ("at", "asset", "old_status", "new_status", "rule_name", "actor", "zone")
    list_filter = ("new_status", "rule")
    search_fields = ("asset__name", "rule_name", "note")
    date_hierarchy = "at"
    list_select_related = ("asset", "actor", "zone")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ZoneGroup)
class ZoneGroupAdmin(admin.ModelAdmin):
    list_display = ("name",)
    filter_horizontal = ("zones",)
    search_fields = ("name",)


@admin.register(ParLevel)
class ParLevelAdmin(admin.ModelAdmin):
    list_display = ("asset_type", "department", "zone_group", "target", "critical_min", "is_active")
    list_filter = ("asset_type", "department", "is_active")


@admin.register(Geofence)
class GeofenceAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "is_active",
        "event",
        "scope",
        "asset_type",
        "severity",
        "quiet_start",
        "quiet_end",
        "policy",
    )
    list_filter = ("is_active", "event", "scope", "severity")
    search_fields = ("name",)


@admin.register(MaintenanceSchedule)
class MaintenanceScheduleAdmin(admin.ModelAdmin):
    list_display = ("name", "asset_type", "asset", "interval_days", "months", "starts_on")
    list_filter = ("asset_type", "is_active")
    search_fields = ("name", "asset__name")
    actions = ["refresh_due"]

    @admin.action(description="Recompute due dates and open due work orders")
    def refresh_due(self, request, queryset):
        count = maintenance.refresh_maintenance_due()
        self.message_user(request, f"due dates recomputed for {count} asset(s)")


@admin.register(MaintenanceDue)
class MaintenanceDueAdmin(admin.ModelAdmin):
    list_display = ("asset", "due_on", "schedule")
    date_hierarchy = "due_on"
    search_fields = ("asset__name",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WorkOrder)
class WorkOrderAdmin(admin.ModelAdmin):
    list_display = ("pk", "title", "asset", "kind", "status", "assignee", "due_on", "completed_at")
    list_filter = ("status", "kind", "assignee")
    search_fields = ("title", "asset__name", "notes")
    readonly_fields = ("created_at", "completed_at")
    list_select_related = ("asset", "assignee")


class RecallUnitInline(admin.TabularInline):
    model = RecallUnit
    extra = 0
    fields = ("asset", "status", "work_order")
    readonly_fields = ("asset", "work_order")


@admin.register(RecallCampaign)
class RecallCampaignAdmin(admin.ModelAdmin):
    """Saving a campaign marks every matching unit (and opens a recall work order for it)."""

    list_display = ("reference", "title", "model", "serial_first", "serial_last", "is_closed")
    search_fields = ("reference", "title", "model")
    inlines = [RecallUnitInline]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        added = maintenance.launch_recall(obj)
        if added:
            self.message_user(request, f"{added} affected unit(s) marked", messages.SUCCESS)


@admin.register(BatterySample)
class BatterySampleAdmin(admin.ModelAdmin):
    list_display = ("tag", "day", "battery_pct", "min_pct")
    date_hierarchy = "day"
    search_fields = ("tag__tag_id",)

    def has_add_permission(self, request):
        return False
