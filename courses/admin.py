from django import forms
from django.contrib import admin

from courses.models import VCenterEndpoint


class VCenterEndpointForm(forms.ModelForm):
    """The password is write-only: typed here, stored encrypted, never shown again."""

    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Leave empty to keep the stored password.",
    )

    class Meta:
        model = VCenterEndpoint
        fields = [
            "name",
            "url",
            "username",
            "password",
            "verify_tls",
            "datacenter",
            "compute_path",
            "datastore",
            "lab_switch",
            "vlan_min",
            "vlan_max",
            "concurrency_limit",
        ]

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and not cleaned.get("password"):
            self.add_error("password", "A new endpoint needs its password.")
        return cleaned

    def save(self, commit=True):
        endpoint = super().save(commit=False)
        if self.cleaned_data.get("password"):
            endpoint.set_password(self.cleaned_data["password"])
        if commit:
            endpoint.save()
        return endpoint


@admin.register(VCenterEndpoint)
class VCenterEndpointAdmin(admin.ModelAdmin):
    form = VCenterEndpointForm
    list_display = ["name", "url", "datacenter", "compute_path", "concurrency_limit"]
    search_fields = ["name", "url"]
