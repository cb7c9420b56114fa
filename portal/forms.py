"""Forms of the project's own pages."""

from __future__ import annotations

from typing import Any

from django import forms

from core.models import AuditEntry


class AuditFilterForm(forms.Form):
    """The audit log's filters (GET): the same names as the API's query parameters."""

    person = forms.CharField(
        required=False,
        max_length=150,
        label="Person",
        help_text="A user name, exactly (for failed logins: the one tried).",
    )
    category = forms.ChoiceField(required=False, choices=[("", "Every category"), *AuditEntry.Category.choices])
    result = forms.ChoiceField(required=False, choices=[("", "Every result"), *AuditEntry.Result.choices])
    q = forms.CharField(
        required=False, max_length=200, label="Text", help_text="Found in the action, the target or the detail."
    )
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def filters(self) -> dict[str, Any]:
        """The selector's arguments (``core.audit.audit_entry_list``); call after is_valid()."""
        data = self.cleaned_data
        return {
            "person": data.get("person", ""),
            "category": data.get("category", ""),
            "result": data.get("result", ""),
            "text": data.get("q", ""),
            "date_from": data.get("date_from"),
            "date_to": data.get("date_to"),
        }
