from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """People: sign-in, roles given to accounts, API tokens, and making student and instructor
    accounts by one rule (accounts.services)."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import signals

        signals.connect()  # sign-ins into the audit log
