"""Forms of the accounts pages: adding an instructor, API keys, and Django's password forms
with their attempts limited."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordChangeForm, PasswordResetForm
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from accounts.models import API_KEY_NAME_MAX
from core import rate_limit

# Guessing a password through the change form, and e-mails asked of the reset form.
OLD_PASSWORD_GUESSES = rate_limit.Limit("old-password", attempts=5, window_seconds=15 * 60)
RESET_MAILS_PER_ADDRESS = rate_limit.Limit("reset-mail-address", attempts=3, window_seconds=60 * 60)
RESET_MAILS_PER_CLIENT = rate_limit.Limit("reset-mail-client", attempts=10, window_seconds=60 * 60)


class InstructorForm(forms.Form):
    username = forms.CharField(max_length=150)
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField(required=False)
    password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Give it to the instructor in person; they can change it later.",
    )

    def clean(self) -> dict:
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            # The service checks it too; here the reasons land on the password field.
            user = get_user_model()(**{name: cleaned.get(name, "") for name in ("username", "first_name", "last_name")})
            try:
                validate_password(password, user)
            except ValidationError as error:
                self.add_error("password", error)
        return cleaned


def _minutes(count: int) -> str:
    return f"{count} minute{'s' if count != 1 else ''}"


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=API_KEY_NAME_MAX, help_text="What it is for, e.g. “grading script” or “my laptop”."
    )


class LimitedPasswordChangeForm(PasswordChangeForm):
    """Django's change form, with wrong old passwords counted like failed sign-ins: a person who
    left a session open must not let someone guess the password from it."""

    def clean_old_password(self):
        who = str(self.user.pk)
        if not rate_limit.attempt(OLD_PASSWORD_GUESSES, who):
            minutes = rate_limit.wait_minutes(OLD_PASSWORD_GUESSES, who)
            raise ValidationError(
                f"Too many wrong passwords. Try again in {_minutes(minutes)}.",
                code="too_many",
            )
        password = super().clean_old_password()
        rate_limit.forgive(OLD_PASSWORD_GUESSES, who)
        return password


class LimitedPasswordResetForm(PasswordResetForm):
    """Django's reset form (the same answer whether or not the address has an account), with
    the e-mails one address and one client may ask for limited: no mail bombing through us."""

    def __init__(self, *args, client_address: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.client_address = client_address

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        for limit, who in ((RESET_MAILS_PER_ADDRESS, email), (RESET_MAILS_PER_CLIENT, self.client_address)):
            if who and not rate_limit.attempt(limit, who):
                minutes = rate_limit.wait_minutes(limit, who)
                raise ValidationError(
                    f"Too many reset e-mails were asked for. Try again in {_minutes(minutes)}.",
                    code="too_many",
                )
        return email
