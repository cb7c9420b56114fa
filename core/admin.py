"""The audit log in the admin, to read only."""

from django.contrib import admin

from core.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The audit log, to read: it is append-only, so nobody adds, changes or deletes an entry here."""

    list_display = ["when", "actor_username", "category", "action", "target", "result", "source", "remote_addr"]
    list_filter = ["category", "result", "source"]
    search_fields = ["actor_username", "action", "target", "detail"]
    date_hierarchy = "when"
    readonly_fields = [field.name for field in AuditEntry._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
