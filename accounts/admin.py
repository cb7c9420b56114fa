"""API tokens in the admin: who has one, and revoking it; never the key."""

from django.contrib import admin
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from accounts.models import ApiToken


class ApiTokenAdmin(TokenAdmin):
    """API tokens, to see who has one and to revoke it: never the key itself in plain text.

    DRF's own admin lists full keys, so anyone who can open the admin page (or a screenshot of
    it) could act as every API user. Its addresses use the user's id, not the key (kept from
    DRF's TokenAdmin). Tokens are made by ``POST /api/v1/auth/token/`` only."""

    list_display = ["masked_key", "user", "created"]
    fields = ["masked_key", "user", "created"]
    readonly_fields = fields

    @admin.display(description="Key")
    def masked_key(self, token: ApiToken) -> str:
        return token.masked_key

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)  # DRF's admin, which lists whole keys
admin.site.register(ApiToken, ApiTokenAdmin)
