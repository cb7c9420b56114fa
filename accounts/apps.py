from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """People: sign-in, roles given to accounts, API tokens, and making student and instructor
    accounts by one rule (accounts.services)."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import signals
        from core.audit import register_object_kind

        signals.connect()  # sign-ins into the audit log
        register_object_kind("accounts.ApiKey", kind="api_key", words="API key", url_kwarg="key_id")
