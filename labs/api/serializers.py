from __future__ import annotations

from rest_framework import serializers

from labs import vsphere
from labs.models import Operation


class OperationSerializer(serializers.ModelSerializer):
    """An operation as the API and the pages see it."""

    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Operation
        fields = [
            "id",
            "kind",
            "state",
            "progress",
            "step",
            "error",
            "result",
            "actor",
            "endpoint",
            "template_version",
            "cancel_requested",
            "created_at",
            "started_at",
            "finished_at",
            "heartbeat_at",
        ]
        read_only_fields = fields


INVENTORY_KINDS = sorted(
    value for name, value in vars(vsphere.Kind).items() if name.isupper() and isinstance(value, str)
)


class InventoryItemSerializer(serializers.Serializer):
    """A row of the picker: a folder to open, or a VM (or template) to pick."""

    moref = serializers.CharField(help_text="vCenter's id of the object, e.g. vm-42; use it as source_moref.")
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=INVENTORY_KINDS)
    path = serializers.CharField(help_text="Inventory path; pass a folder's as ?path= to open it.")


class NicSerializer(serializers.Serializer):
    label = serializers.CharField()
    network = serializers.CharField(allow_null=True, help_text="Port group name; null if vCenter does not say.")
    mac_address = serializers.CharField(allow_null=True)
    connected = serializers.BooleanField()


class VMInfoSerializer(serializers.Serializer):
    """A VM as vCenter describes it now, for the picker."""

    name = serializers.CharField()
    moref = serializers.CharField()
    path = serializers.CharField()
    power_state = serializers.ChoiceField(choices=["poweredOn", "poweredOff", "suspended"])
    num_cpu = serializers.IntegerField()
    memory_mb = serializers.IntegerField()
    disk_gb = serializers.FloatField()
    nested_hv = serializers.BooleanField(help_text="Hardware virtualization exposed to the guest (nested ESXi).")
    is_template = serializers.BooleanField()
    nics = NicSerializer(many=True)
