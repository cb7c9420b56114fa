"""Shapes of the labs API. Meaning (permissions, quotas, busy labs) is the services' job."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api import ChoiceField
from labs import failure_words, permissions, selectors, services, vsphere
from labs.models import ConsoleSession, Lab, LabNetwork, LabSnapshot, LabVM, Operation, WarmPool


def reads_failure_detail(serializer: serializers.Serializer, *, lab_id: int | None, course=None) -> bool:
    """Whether the person the answer is for (the context's ``request``) reads a failure in
    vCenter's words and the vCenter's id (``labs.permissions.sees_failure_detail``); without a
    request, no one is assumed to. Asked once per course (a lab's, at hand) or per lab (an
    operation's, whose lab is not read) of an answer; a student's answer asks no query."""
    request = serializer.context.get("request")
    if request is None:
        return False
    if lab_id is None:  # an operation on no lab: only the person who started it and admins see it
        return True
    known = serializer.context.setdefault("failure_detail", {})
    key = ("course", course.pk) if course is not None else ("lab", lab_id)
    if key not in known:
        known[key] = (
            permissions.sees_failure_detail(request.user, course)
            if course is not None
            else selectors.reads_failure_detail(user=request.user, lab_id=lab_id)
        )
    return known[key]


class OperationSerializer(serializers.ModelSerializer):
    """An operation as the API and the pages see it. A lab's student gets the failure in words
    without vCenter's details and no vCenter id (docs/security.md, fourth round)."""

    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)
    endpoint = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="The vCenter's id; null for the lab's student."
    )

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
            "lab",
            "template_version",
            "cancel_requested",
            "created_at",
            "started_at",
            "finished_at",
            "heartbeat_at",
        ]
        read_only_fields = fields

    def to_representation(self, operation: Operation) -> dict:
        data = super().to_representation(operation)
        if not reads_failure_detail(self, lab_id=operation.lab_id):
            data["error"] = failure_words.for_students(data["error"])
            data["endpoint"] = None
            moved_to = (data.get("result") or {}).get("moved_to")
            if isinstance(moved_to, dict):
                data["result"] = {**data["result"], "moved_to": {**moved_to, "endpoint": None}}
        return data


INVENTORY_KINDS = sorted(
    value for name, value in vars(vsphere.Kind).items() if name.isupper() and isinstance(value, str)
)


class InventoryItemSerializer(serializers.Serializer):
    """A row of the picker: a folder to open, or a VM (or template) to pick."""

    moref = serializers.CharField(help_text="vCenter's id of the object, e.g. vm-42; use it as source_moref.")
    name = serializers.CharField()
    kind = ChoiceField(choices=INVENTORY_KINDS)
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
    power_state = ChoiceField(choices=[LabVM.PowerState.ON, LabVM.PowerState.OFF, LabVM.PowerState.SUSPENDED])
    num_cpu = serializers.IntegerField()
    memory_mb = serializers.IntegerField()
    disk_gb = serializers.FloatField()
    nested_hv = serializers.BooleanField(help_text="Hardware virtualization exposed to the guest (nested ESXi).")
    is_template = serializers.BooleanField()
    nics = NicSerializer(many=True)


# Student labs


class LabVMSerializer(serializers.ModelSerializer):
    """A VM of a lab as last seen in vCenter (the watcher keeps it current)."""

    class Meta:
        model = LabVM
        fields = [
            "id",
            "role",
            "name",
            "boot_order",
            "power_state",
            "guest_ip",
            "overall_status",
            "num_cpu",
            "memory_mb",
        ]
        read_only_fields = fields


class LabNetworkSerializer(serializers.ModelSerializer):
    """A lab's own copy of a template network: a port group on a VLAN of its own."""

    class Meta:
        model = LabNetwork
        fields = ["name", "vlan_id", "port_group"]
        read_only_fields = fields


class LabSnapshotSerializer(serializers.ModelSerializer):
    """A lab-wide snapshot and, in ``children``, the snapshots taken after it."""

    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Who took it (username)."
    )

    class Meta:
        model = LabSnapshot
        fields = ["id", "name", "description", "parent", "is_baseline", "created_at", "created_by", "children"]
        read_only_fields = fields


# Declared after the class so the field can name it: the schema shows one recursive component.
LabSnapshotSerializer._declared_fields["children"] = LabSnapshotSerializer(
    many=True, read_only=True, source="tree_children", help_text="Snapshots taken from this one, oldest first."
)


class LabSerializer(serializers.ModelSerializer):
    """A lab in a list: whose it is, its state, and what it is doing now."""

    name = serializers.CharField(read_only=True, help_text="Course code, student and number: its name in vCenter.")
    course_code = serializers.CharField(source="course.code", read_only=True)
    student = serializers.SlugRelatedField(slug_field="username", read_only=True)
    running = serializers.BooleanField(source="is_running", read_only=True, help_text="Any of its VMs is on.")
    hours_used = serializers.SerializerMethodField(help_text="Hours any VM was on, the running period included.")
    operation = serializers.SerializerMethodField(
        help_text="The operation keeping the lab busy (one on it, or a clone made from it), or null."
    )

    class Meta:
        model = Lab
        fields = [
            "id",
            "name",
            "course",
            "course_code",
            "student",
            "number",
            "state",
            "error",
            "running",
            "hours_used",
            "vcpu",
            "memory_mb",
            "disk_gb",
            "source_lab",
            "expires_at",
            "lease_extensions_used",
            "created_at",
            "ready_at",
            "deleted_at",
            "operation",
        ]
        read_only_fields = fields

    def get_hours_used(self, lab: Lab) -> float:
        return round(lab.hours_now(), 2)

    def _active(self, lab: Lab) -> Operation | None:
        if hasattr(lab, "active_operation"):
            return lab.active_operation
        return self.context.get("active_operations", {}).get(lab.pk)

    @extend_schema_field(OperationSerializer(allow_null=True))
    def get_operation(self, lab: Lab) -> dict | None:
        operation = self._active(lab)
        return OperationSerializer(operation, context=self.context).data if operation is not None else None

    def to_representation(self, lab: Lab) -> dict:
        data = super().to_representation(lab)
        if not reads_failure_detail(self, lab_id=lab.pk, course=lab.course):
            data["error"] = failure_words.for_students(data["error"])
            if "endpoint" in data:
                data["endpoint"] = None
        return data


class LabDetailSerializer(LabSerializer):
    """A lab with its VMs, networks and snapshot tree."""

    vms = LabVMSerializer(many=True, read_only=True)
    networks = LabNetworkSerializer(many=True, read_only=True)
    snapshots = serializers.SerializerMethodField(help_text="The snapshot tree: its roots, each with its children.")
    endpoint = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="The vCenter's id; null for the lab's student."
    )

    class Meta(LabSerializer.Meta):
        fields = [
            *LabSerializer.Meta.fields,
            "template_version",
            "endpoint",
            "current_snapshot",
            "vms",
            "networks",
            "snapshots",
        ]
        read_only_fields = fields

    @extend_schema_field(LabSnapshotSerializer(many=True))
    def get_snapshots(self, lab: Lab) -> list[dict]:
        return LabSnapshotSerializer(selectors.snapshot_tree(lab), many=True).data


class IdField(serializers.IntegerField):
    """An object's id in a body or a query: a whole number the database can hold (a larger
    one is a 400 in words, not a database error)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(min_value=1, max_value=2**63 - 1, **kwargs)


class LabStartSerializer(serializers.Serializer):
    course = IdField(help_text="The course whose lab to start.")
    student = serializers.CharField(
        required=False, help_text="Instructors and admins: the enrolled student to start it for (username)."
    )


class SnapshotCreateSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True, help_text="Unique in the lab, up to 80 characters.")
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class RevertSerializer(serializers.Serializer):
    snapshot = IdField(help_text="A snapshot of this lab (its baseline's id to go back to the start).")


class PowerSerializer(serializers.Serializer):
    action = ChoiceField(choices=services.POWER_ACTIONS)
    vm = IdField(required=False, allow_null=True, help_text="One of the lab's VMs (its id); without it, the whole lab.")


class ProvisionSerializer(serializers.Serializer):
    students = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Usernames; without it, every enrolled student who has no lab.",
    )


class ProvisionResultSerializer(serializers.Serializer):
    started = OperationSerializer(many=True, help_text="One provision operation per lab started.")
    skipped = serializers.DictField(
        child=serializers.CharField(), help_text="Username: why no lab was started for them, in words."
    )


BULK_ACTIONS = ("power_off", "reset", "delete")


class BulkSerializer(serializers.Serializer):
    action = ChoiceField(choices=BULK_ACTIONS)
    labs = serializers.ListField(child=IdField(), min_length=1, max_length=1000)


class BulkResultSerializer(serializers.Serializer):
    lab = serializers.IntegerField()
    status = serializers.IntegerField(help_text="What the lab's own route would answer: 202, 400, 403, 404 or 409.")
    operation = OperationSerializer(allow_null=True, help_text="The operation started, or null.")
    detail = serializers.CharField(help_text="The refusal in words; empty when an operation started.")


class BulkResponseSerializer(serializers.Serializer):
    results = BulkResultSerializer(many=True, help_text="One per lab asked for, in the order asked.")


# Query filters (shown in the schema as query parameters)


class OperationFilterSerializer(serializers.Serializer):
    lab = IdField(required=False, help_text="Only the operations on this lab.")
    state = ChoiceField(choices=Operation.State.choices, required=False)
    kind = ChoiceField(choices=Operation.Kind.choices, required=False)


class LabFilterSerializer(serializers.Serializer):
    course = IdField(required=False, help_text="Only the labs of this course.")
    state = ChoiceField(
        choices=Lab.State.choices, required=False, help_text="Only labs in this state; `deleted` shows deleted labs."
    )


class ConsoleSessionSerializer(serializers.ModelSerializer):
    """A console session: the record of one person's console of one lab VM (never its key)."""

    user = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ConsoleSession
        fields = [
            "id",
            "user",
            "lab",
            "vm",
            "vm_name",
            "mode",
            "state",
            "created_at",
            "connected_at",
            "closed_at",
            "last_input_at",
            "bytes_to_vm",
            "bytes_from_vm",
            "close_reason",
        ]
        read_only_fields = fields


class ConsoleOpenSerializer(serializers.Serializer):
    mode = ChoiceField(
        choices=ConsoleSession.Mode.choices,
        default=ConsoleSession.Mode.CONTROL,
        help_text="`control` (keyboard and mouse) or `observe` (read-only; the course's instructors and admins).",
    )


class ConsoleOpenedSerializer(ConsoleSessionSerializer):
    """The session just opened, with what its browser needs to connect (once, and soon)."""

    websocket_path = serializers.SerializerMethodField(
        help_text="Connect here (same origin, subprotocol `binary`) within `connect_within_seconds`; once."
    )
    connect_within_seconds = serializers.SerializerMethodField()

    class Meta(ConsoleSessionSerializer.Meta):
        fields = [*ConsoleSessionSerializer.Meta.fields, "websocket_path", "connect_within_seconds"]
        read_only_fields = fields

    def get_websocket_path(self, session: ConsoleSession) -> str:
        return f"/ws/console/{session.key}/"

    def get_connect_within_seconds(self, session: ConsoleSession) -> int:
        from django.conf import settings

        return settings.NESTLAB_CONSOLE_CONNECT_SECONDS


class PoolSerializer(serializers.Serializer):
    """A course's warm pool: what it holds now, and its size (labs.models.WarmPool)."""

    size = serializers.IntegerField(
        min_value=0, help_text="Labs kept ready at all times (0: no pool). At most 1000 (the model's bound)."
    )
    sizing = serializers.ChoiceField(
        choices=WarmPool.Sizing.choices,
        default=WarmPool.Sizing.FIXED,
        help_text="fixed: the size; schedule: the size plus one per enrolled student without a lab before each "
        "class session.",
    )
    target = serializers.IntegerField(read_only=True, help_text="How many the pool should hold now, before the cap.")
    cap = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The quota's pool_labs (null: no cap of its own)."
    )
    ready = serializers.IntegerField(read_only=True, help_text="Pool labs ready to hand over.")
    building = serializers.IntegerField(read_only=True, help_text="Pool labs being built.")
    given_today = serializers.IntegerField(read_only=True, help_text="Pool labs handed to students today.")
    words = serializers.CharField(read_only=True, help_text="All of it in words, as the class page says it.")


class EndpointLoadSerializer(serializers.Serializer):
    """One vCenter's load now: what placement weighs when it puts a new lab somewhere."""

    id = serializers.IntegerField(source="endpoint.pk")
    name = serializers.CharField(source="endpoint.name")
    labs_building = serializers.IntegerField()
    labs_running = serializers.IntegerField()
    vms = serializers.IntegerField(help_text="Lab VMs powered on, and those of labs being built.")
    memory_mb = serializers.IntegerField(help_text="Memory configured on those VMs.")
    storage_gb = serializers.FloatField(help_text="Disk of every lab that holds vCenter resources there.")
    concurrency_limit = serializers.IntegerField(source="endpoint.concurrency_limit")
    slots_in_use = serializers.IntegerField(help_text="Clone slots held now.")
    clones_waiting = serializers.IntegerField()
    builds_in_line = serializers.IntegerField()
    free_slots = serializers.IntegerField(help_text="Slots left once the waiting clones and builds have theirs.")
    max_running_vms = serializers.IntegerField(source="endpoint.max_running_vms", allow_null=True)
    max_memory_gb = serializers.IntegerField(source="endpoint.max_memory_gb", allow_null=True)
    max_storage_gb = serializers.IntegerField(source="endpoint.max_storage_gb", allow_null=True)
    in_maintenance = serializers.BooleanField()
    unreachable = serializers.CharField(help_text='Why it could not be reached lately, in words; "" when it could.')
    takes_new_labs = serializers.SerializerMethodField()
    refusal = serializers.CharField(help_text='Why it takes no new labs, in words; "" when it does.')

    def get_takes_new_labs(self, load) -> bool:
        return not load.refusal
