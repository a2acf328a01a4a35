from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from alerts import services
from alerts.models import Alert, AlertEvent, AlertState, EscalationPolicy, EscalationTier


class ResolveForm(forms.Form):
    note = forms.CharField(
        label="Corrective action",
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text="What was done, e.g. 'stock moved to fridge 2, door seal replaced, pharmacist "
        "reviewed the excursion'. Recorded with your name on every selected alert.",
    )


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

    @admin.action(description="Resolve the selected alerts (asks for the corrective action)")
    def resolve_selected(self, request, queryset):
        """An intermediate page asks for the corrective-action note: it is what the compliance
        report shows for the excursion, so it is written by the person, never filled in."""
        alerts = list(queryset.exclude(state=AlertState.RESOLVED))
        skipped = queryset.filter(state=AlertState.RESOLVED).count()
        if skipped:
            self.message_user(request, f"{skipped} alert(s) already resolved", messages.WARNING)
        if not alerts:
            return None
        form = ResolveForm(request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            done = 0
            for alert in alerts:
                try:
                    services.resolve(alert, request.user, form.cleaned_data["note"])
                    done += 1
                except services.AlertError as exc:
                    self.message_user(request, f"#{alert.pk}: {exc}", messages.WARNING)
            self.message_user(request, f"{done} alert(s) resolved")
            return None
        return TemplateResponse(
            request,
            "admin/alerts/alert/resolve_selected.html",
            {
                **self.admin_site.each_context(request),
                "title": "Resolve alerts: corrective action",
                "opts": self.model._meta,
                "alerts": alerts,
                "form": form,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )
