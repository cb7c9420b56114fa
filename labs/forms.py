"""Forms of the lab pages: they parse input; services decide and write."""

from __future__ import annotations

from django import forms

from labs.models import WarmPool
from labs.services import POWER_ACTIONS


class SnapshotForm(forms.Form):
    """A named snapshot of the whole lab."""

    name = forms.CharField(
        max_length=80,
        widget=forms.TextInput(attrs={"placeholder": "e.g. cluster built", "autocomplete": "off"}),
        error_messages={"required": "Give the snapshot a name.", "max_length": "Keep the name under 80 characters."},
    )
    description = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "What state the lab is in", "autocomplete": "off"}),
    )


class PowerForm(forms.Form):
    action = forms.ChoiceField(
        choices=[(action, action) for action in POWER_ACTIONS],
        error_messages={
            "invalid_choice": "Choose power on, off or reset.",
            "required": "Choose power on, off or reset.",
        },
    )


CLASS_ACTIONS = {
    "provision": "Provision",
    "power_off": "Power off",
    "reset": "Reset",
    "delete": "Delete",
}
# Actions that lose students' work ask first, on a page of their own.
CONFIRMED_ACTIONS = frozenset({"power_off", "reset", "delete"})


class ClassActionForm(forms.Form):
    """An action on the selected labs (and students without one) of a class."""

    action = forms.ChoiceField(
        choices=list(CLASS_ACTIONS.items()), error_messages={"invalid_choice": "Pick an action."}
    )
    lab = forms.TypedMultipleChoiceField(coerce=int, required=False)
    student = forms.TypedMultipleChoiceField(coerce=int, required=False)
    confirmed = forms.BooleanField(required=False)

    def __init__(self, *args, lab_ids: list[int], student_ids: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lab"].choices = [(pk, pk) for pk in lab_ids]
        self.fields["lab"].error_messages["invalid_choice"] = "A selected lab is not in this class any more."
        self.fields["student"].choices = [(pk, pk) for pk in student_ids]
        self.fields["student"].error_messages["invalid_choice"] = "A selected student is not in this class any more."

    def clean(self):
        data = super().clean()
        if not self.errors and not data.get("lab") and not data.get("student"):
            raise forms.ValidationError("Select the labs or students first (the boxes at the start of each row).")
        return data


class PoolForm(forms.ModelForm):
    """The size of a course's warm pool (bounds from the model: labs.models.WarmPool)."""

    class Meta:
        model = WarmPool
        fields = ["size", "sizing"]
        labels = {"size": "Labs kept ready", "sizing": "Sized"}
