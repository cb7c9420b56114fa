from django.contrib import admin

from labs.models import Operation


@admin.register(Operation)
class OperationAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "state", "progress", "step", "actor", "endpoint", "created_at"]
    list_filter = ["kind", "state", "endpoint"]
    search_fields = ["step", "error", "celery_task_id"]
    readonly_fields = [field.name for field in Operation._meta.fields]

    def has_add_permission(self, request):
        return False
