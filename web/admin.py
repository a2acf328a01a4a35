"""The audit trail in the admin: read-only for everyone, superusers included (append-only)."""

from auditlog.admin import LogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin


class AuditTrailAdmin(LogEntryAdmin):
    """auditlog's own view, minus every way to delete an entry (no delete action either)."""

    actions = None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.unregister(LogEntry)
admin.site.register(LogEntry, AuditTrailAdmin)
