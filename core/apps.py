from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The shared floor every app stands on: errors and their one map to statuses and words,
    realtime groups, the audit log, roles, secrets, Markdown, and the API's common parts. It
    imports no other app of the project (import-linter's layers contract)."""

    name = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Model choice fields in the API refuse a value repeating at most a few dozen characters
        # of it (core.api.ChoiceField), like the explicit ones.
        from rest_framework import serializers

        from core.api import ChoiceField

        serializers.ModelSerializer.serializer_choice_field = ChoiceField
