from django.contrib import admin, messages

from alerts import services
from alerts.models import Alert, AlertEvent, EscalationPolicy, EscalationTier


class TierInline(admin.StackedInline):
    model = EscalationTier
    extra = 0
    filter_horizontal = ("users", "groups")


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(admin.ModelAdmin):
    list_display = ("name", "is_default", "repeat_every_min")
    search_fields = ("name",)
    inlines = [TierInline]


class EventInline(admin.TabularInline):
    model = AlertEvent
    extra = 0
    can_delete = False
    fields = ("at", "kind", "actor", "message")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Alert history: filters, the timeline, and acknowledge/resolve as audited actions.
    Nothing else is editable and nothing can be deleted."""

    list_display = (
        "opened_at",
        "title",
        "kind",
        "severity",
        "state",
        "peak_value",
        "acknowledged_by",
        "resolved_at",
    )
    list_filter = ("state", "severity", "source", "kind", "resolved_automatically")
    search_fields = ("title", "subject", "message", "sensor__serial")
    date_hierarchy = "opened_at"
    list_select_related = ("sensor", "acknowledged_by")
    inlines = [EventInline]
    actions = ["acknowledge_selected", "resolve_selected"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Alert._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Acknowledge the selected alerts")
    def acknowledge_selected(self, request, queryset):
        done = 0
        for alert in queryset:
            try:
                services.acknowledge(alert, request.user, "acknowledged in the admin")
                done += 1
            except services.AlertError as exc:
                self.message_user(request, f"#{alert.pk}: {exc}", messages.WARNING)
        self.message_user(request, f"{done} alert(s) acknowledged")

    @admin.action(description="Resolve the selected alerts (corrective action done)")
    def resolve_selected(self, request, queryset):
        done = 0
        for alert in queryset:
            try:
                services.resolve(
                    alert, request.user, "resolved in the admin: corrective action recorded there"
                )
                done += 1
            except services.AlertError as exc:
                self.message_user(request, f"#{alert.pk}: {exc}", messages.WARNING)
        self.message_user(request, f"{done} alert(s) resolved")
