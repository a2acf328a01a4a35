"""Biomed and administrators configure the workflows here (docs/workflows.md), and change the
status of many assets at once (the asset list's bulk actions, through workflows.status)."""

from django.contrib import admin, messages

from integrations.admin import AssetImportExportAdmin
from tracking.models import Asset, AssetStatus
from tracking.status import allowed_statuses
from workflows import maintenance, status
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


def _status_action(value: str, label: str):
    def action(modeladmin, request, queryset):
        changes = status.set_status(
            queryset.values_list("pk", flat=True),
            value,
            actor=request.user,
            note=f"admin bulk action: {label}",
        )
        modeladmin.message_user(
            request, f"{len(changes)} asset(s) set to “{label}”", messages.SUCCESS
        )

    action.__name__ = f"set_status_{value.replace('-', '_')}"
    return admin.action(description=f"Set status: {label}", permissions=["change"])(action)


admin.site.unregister(Asset)


@admin.register(Asset)
class AssetAdmin(AssetImportExportAdmin):
    """The asset list (with CSV import and export) and bulk status actions: each change is in
    the status history and the audit trail with the person, pushed to the floor map, and the par
    levels are re-checked (workflows.status.set_status)."""

    actions = [_status_action(value, label) for value, label in AssetStatus.choices]

    def get_actions(self, request):
        """Only the statuses the person may set (tracking.status.allowed_statuses)."""
        actions = super().get_actions(request)
        allowed = {f"set_status_{s.replace('-', '_')}" for s in allowed_statuses(request.user)}
        return {
            name: action
            for name, action in actions.items()
            if not name.startswith("set_status_") or name in allowed
        }


@admin.register(StatusChange)
class StatusChangeAdmin(admin.ModelAdmin):
    """The status history is evidence: read only."""

    list_display = (
        "at",
        "asset",
        "old_status",
        "new_status",
        "source",
        "rule_name",
        "actor",
        "zone",
    )
    list_filter = ("source", "new_status", "rule")
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
    list_display = (
        "name",
        "asset_type",
        "asset",
        "interval_days",
        "months",
        "starts_on",
        "raise_alerts",
        "policy",
    )
    list_filter = ("asset_type", "is_active", "raise_alerts")
    search_fields = ("name", "asset__name")
    actions = ["refresh_due"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        maintenance.refresh_and_alert()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        maintenance.refresh_and_alert()

    @admin.action(description="Recompute due dates, open due work orders, raise due alerts")
    def refresh_due(self, request, queryset):
        count = maintenance.refresh_and_alert()
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
