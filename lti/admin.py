"""LMS platforms in Django's admin: saved and removed through lti.services (checks, audit)."""

from django.contrib import admin

from lti import services
from lti.models import CourseLink, Identity, Platform, ToolKey


@admin.register(Platform)
class PlatformAdmin(admin.ModelAdmin):
    list_display = ["name", "issuer", "client_id", "is_active"]
    search_fields = ["name", "issuer", "client_id"]

    def save_model(self, request, obj, form, change) -> None:
        fields = {name: getattr(obj, name) for name in services.PLATFORM_FIELDS}
        if change:
            services.platform_update(platform=Platform.objects.get(pk=obj.pk), actor=request.user, **fields)
        else:
            obj.pk = services.platform_create(actor=request.user, **fields).pk

    def delete_model(self, request, obj) -> None:
        services.platform_delete(platform=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for platform in queryset:
            services.platform_delete(platform=platform, actor=request.user)


@admin.register(CourseLink)
class CourseLinkAdmin(admin.ModelAdmin):
    list_display = ["course", "platform", "context_title", "context_id", "roster_synced_at"]
    list_filter = ["platform"]
    readonly_fields = [field.name for field in CourseLink._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # links are made by an instructor's launch

    def delete_model(self, request, obj) -> None:
        services.course_link_delete(link=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for link in queryset:
            services.course_link_delete(link=link, actor=request.user)


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):
    """Who a platform's user is in Nestlab. An admin links an LMS account to an existing account
    here (e.g. a teacher's staff account, which a launch never takes by its e-mail)."""

    list_display = ["subject", "platform", "user", "last_launch_at"]
    list_filter = ["platform"]
    search_fields = ["subject", "user__username", "user__email"]
    raw_id_fields = ["user"]
    readonly_fields = ["last_launch_at", "created_at"]

    def save_model(self, request, obj, form, change) -> None:
        services.identity_link(identity=obj, actor=request.user)


@admin.register(ToolKey)
class ToolKeyAdmin(admin.ModelAdmin):
    list_display = ["kid", "active", "created_at"]
    readonly_fields = ["kid", "public_key_pem", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False  # made by lti.keys (rotate through the API)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a key is retired (not active), never deleted: platforms may still check it
