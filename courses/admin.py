from django import forms
from django.contrib import admin

from courses.models import QuotaDefaults, VCenterEndpoint


class VCenterEndpointForm(forms.ModelForm):
    """The password is write-only: typed here, stored encrypted, never shown again."""

    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Leave empty to keep the stored password.",
    )
    console_password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="The console account's password; leave empty to keep the stored one.",
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
            "in_maintenance",
            "max_running_vms",
            "max_memory_gb",
            "max_storage_gb",
            "template_source_folders",
            "console_username",
            "console_password",
        ]

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and not cleaned.get("password"):
            self.add_error("password", "A new endpoint needs its password.")
        if cleaned.get("password"):
            # Before the model's check, which asks for it again when the address changed.
            self.instance.set_password(cleaned["password"])
        if cleaned.get("console_password"):
            self.instance.set_console_password(cleaned["console_password"])
        return cleaned

    def save(self, commit=True):
        endpoint = super().save(commit=False)
        if commit:
            endpoint.save()
        return endpoint


@admin.register(VCenterEndpoint)
class VCenterEndpointAdmin(admin.ModelAdmin):
    form = VCenterEndpointForm
    list_display = ["name", "url", "datacenter", "compute_path", "concurrency_limit"]
    search_fields = ["name", "url"]


@admin.register(QuotaDefaults)
class QuotaDefaultsAdmin(admin.ModelAdmin):
    """The limits new courses start with: one row, edited, never deleted."""

    fields = QuotaDefaults.LIMIT_FIELDS

    def has_add_permission(self, request) -> bool:
        return not QuotaDefaults.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
