"""Admin for integration clients, webhooks and their delivery log; CSV import/export of assets
(the tracking app's asset admin, with django-import-export's import and export buttons)."""

from django.contrib import admin
from import_export.admin import ImportExportModelAdmin

from integrations.models import IntegrationClient, Webhook, WebhookDelivery
from integrations.resources import AssetResource
from tracking.admin import AssetAdmin
from tracking.models import Asset

admin.site.unregister(Asset)


@admin.register(Asset)
class AssetImportExportAdmin(ImportExportModelAdmin, AssetAdmin):
    resource_classes = [AssetResource]


@admin.register(IntegrationClient)
class IntegrationClientAdmin(admin.ModelAdmin):
    """Keys are issued with `manage.py integration_key`; here they are seen and revoked."""

    list_display = ("name", "user", "lookup", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("user", "lookup", "created_at", "last_used_at")
    exclude = ("secret_hash",)
    search_fields = ("name",)

    def has_add_permission(self, request):
        return False


class DeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    extra = 0
    fields = ("created_at", "event_type", "state", "attempts", "last_status", "last_error")
    readonly_fields = fields
    ordering = ["-created_at"]
    max_num = 0
    show_change_link = True


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ("name", "url", "is_active", "event_types", "max_attempts")
    list_filter = ("is_active",)
    search_fields = ("name", "url")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "webhook",
        "event_type",
        "state",
        "attempts",
        "last_status",
        "next_attempt_at",
    )
    list_filter = ("state", "event_type", "webhook")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    actions = ["retry_now"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Retry the selected deliveries now")
    def retry_now(self, request, queryset):
        from integrations.tasks import deliver_webhook

        pending = list(queryset.filter(state="pending").values_list("pk", flat=True))
        for pk in pending:
            deliver_webhook.delay(pk)
        self.message_user(request, f"{len(pending)} deliveries queued")
