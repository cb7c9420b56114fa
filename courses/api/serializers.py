"""Shapes of the courses API. Validation of meaning (permissions, quotas, invariants) is the services' job."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers

from core.api import ChoiceField
from courses import guides, permissions, selectors, services
from courses.models import (
    GUIDE_IMAGE_MAX_BYTES,
    Course,
    CourseQuota,
    Enrollment,
    GuideCheck,
    GuideImage,
    GuideStep,
    GuideVariable,
    LabTemplate,
    QuotaTopUp,
    TemplateNetwork,
    TemplateVersion,
    TemplateVM,
    VCenterEndpoint,
    VersionBaseline,
)

User = get_user_model()


# vCenter endpoints


class EndpointSerializer(serializers.ModelSerializer):
    """A vCenter endpoint. The password is write-only and never part of an answer."""

    password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Write-only. Required when creating; empty or missing on update keeps the stored one.",
    )
    console_password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Write-only: the password of console_username; empty or missing keeps the stored one.",
    )

    class Meta:
        model = VCenterEndpoint
        fields = [
            "id",
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
            "template_source_folders",
            "console_username",
            "console_password",
            "in_maintenance",
            "max_running_vms",
            "max_memory_gb",
            "max_storage_gb",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]


class EndpointNameSerializer(serializers.ModelSerializer):
    """A vCenter endpoint as instructors see it: enough to pick one for a template."""

    class Meta:
        model = VCenterEndpoint
        fields = ["id", "name"]
        read_only_fields = fields


class EndpointNameSchema(OpenApiSerializerExtension):
    """An instructor's endpoint has exactly these fields: saying so in the schema tells it from
    an admin's in the list's ``oneOf`` (an admin's has more, so it is not an EndpointName)."""

    target_class = EndpointNameSerializer

    def map_serializer(self, auto_schema, direction):
        return {**auto_schema._map_basic_serializer(self.target, direction), "additionalProperties": False}


# Templates


class TemplateNetworkSerializer(serializers.ModelSerializer):
    """A network of the lab; every student lab gets its own copy."""

    class Meta:
        model = TemplateNetwork
        fields = ["id", "name", "description"]


class NicNetworksField(serializers.ListField):
    """The template networks of a VM's adapters, by name, in adapter order."""

    child = serializers.SlugField(max_length=40)

    def get_attribute(self, instance: TemplateVM) -> list[str]:
        return [nic.network.name for nic in instance.nics.all()]


def sees_template_detail(serializer: serializers.Serializer, template_id: int) -> bool:
    """``courses.permissions.sees_template_detail`` for the person the answer is for (the
    context's ``request``; without one, no one), asked once per template of an answer."""
    request = serializer.context.get("request")
    if request is None:
        return False
    known = serializer.context.setdefault("template_detail", {})
    if template_id not in known:
        template = LabTemplate.objects.get(pk=template_id)
        known[template_id] = permissions.sees_template_detail(request.user, template)
    return known[template_id]


class TemplateVMSerializer(serializers.ModelSerializer):
    """A VM of a template, picked from the endpoint's inventory (see endpoints/{id}/inventory/).
    ``guest_username`` is null for whoever may not edit the template."""

    nic_networks = NicNetworksField(
        required=False,
        help_text="Template network names for the VM's adapters, first adapter first; [] leaves them unassigned.",
    )
    guest_username = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="The guest account's user name; null unless you may edit the template.",
    )

    class Meta:
        model = TemplateVM
        fields = [
            "id",
            "role",
            "source_moref",
            "source_name",
            "source_path",
            "boot_order",
            "cpu_override",
            "memory_mb_override",
            "nested_hv_required",
            "nic_networks",
            "guest_username",
            "guest_password_set",
        ]
        read_only_fields = ["guest_username"]

    guest_password_set = serializers.SerializerMethodField(
        help_text="Whether a guest password is stored (it is never shown; guide checks run commands with it)."
    )

    def get_guest_password_set(self, vm: TemplateVM) -> bool:
        return bool(vm.guest_password_ciphertext)

    def to_representation(self, vm: TemplateVM) -> dict:
        data = super().to_representation(vm)
        if "guest_username" in data and not sees_template_detail(self, vm.template_id):
            data["guest_username"] = None  # a credential hint: for those who may edit the template
        return data


class TemplateVMUpdateSerializer(TemplateVMSerializer):
    """A template VM's settings; the source VM itself cannot change (remove it and add another).
    The guest account (for guide checks that run a command) is set here: the password is
    write-only and stored encrypted; empty or missing keeps the stored one, and an empty
    ``guest_username`` forgets the account."""

    guest_username = serializers.CharField(
        max_length=100,
        required=False,
        allow_blank=True,
        help_text="An account of the guest operating system that guide checks run commands with; empty forgets it.",
    )
    guest_password = serializers.CharField(
        max_length=256,
        required=False,
        allow_blank=True,
        write_only=True,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Write-only: stored encrypted, never shown. Empty or missing keeps the stored one.",
    )

    class Meta(TemplateVMSerializer.Meta):
        fields = [*TemplateVMSerializer.Meta.fields, "guest_password"]
        read_only_fields = ["source_moref", "source_name", "source_path"]


class VersionBaselineSerializer(serializers.ModelSerializer):
    """A version on one vCenter: labs are built only where its baseline is ready."""

    endpoint_name = serializers.CharField(source="endpoint.name", read_only=True)

    class Meta:
        model = VersionBaseline
        fields = ["endpoint", "endpoint_name", "state", "error"]
        read_only_fields = fields


class TemplateVersionSerializer(serializers.ModelSerializer):
    """A published (or publishing, or failed) frozen copy of a template; courses pin one by id.
    Why it (or a baseline) failed is in vCenter's words for whoever may edit the template only."""

    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    baselines = VersionBaselineSerializer(many=True, read_only=True)

    class Meta:
        model = TemplateVersion
        fields = [
            "id",
            "number",
            "revision",
            "state",
            "baselines",
            "vcpu_total",
            "memory_mb_total",
            "disk_gb_total",
            "spec",
            "error",
            "created_by",
            "created_at",
            "published_at",
        ]
        read_only_fields = fields

    def to_representation(self, version: TemplateVersion) -> dict:
        data = super().to_representation(version)
        if not sees_template_detail(self, version.template_id):
            if data["error"]:
                data["error"] = selectors.HIDDEN_PUBLISH_ERROR
            for baseline in data["baselines"]:
                if baseline["error"]:
                    baseline["error"] = selectors.HIDDEN_PUBLISH_ERROR
        return data


class TemplateSerializer(serializers.ModelSerializer):
    """A template in a list."""

    endpoint_name = serializers.CharField(source="endpoint.name", read_only=True)
    owners = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)
    vm_count = serializers.IntegerField(read_only=True)
    latest_version = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Number of the newest published version, if any."
    )

    class Meta:
        model = LabTemplate
        fields = [
            "id",
            "name",
            "description",
            "endpoint",
            "endpoint_name",
            "extra_endpoints",
            "linked_clones",
            "owners",
            "revision",
            "vm_count",
            "latest_version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class TemplateDetailSerializer(TemplateSerializer):
    """A template with its manual, networks and VMs."""

    networks = TemplateNetworkSerializer(many=True, read_only=True)
    vms = TemplateVMSerializer(many=True, read_only=True)
    unpublished_changes = serializers.SerializerMethodField(
        help_text="The draft differs from the newest version (or nothing is published yet)."
    )

    class Meta(TemplateSerializer.Meta):
        fields = [*TemplateSerializer.Meta.fields, "manual", "networks", "vms", "unpublished_changes"]
        read_only_fields = fields

    def get_unpublished_changes(self, template: LabTemplate) -> bool:
        return selectors.template_has_unpublished_changes(template)


class TemplateUpdateSerializer(serializers.ModelSerializer):
    """What an edit of a template's draft may change (networks and VMs have their own routes)."""

    class Meta:
        model = LabTemplate
        fields = ["name", "description", "endpoint", "extra_endpoints", "manual", "linked_clones"]
        extra_kwargs = {"extra_endpoints": {"required": False}}


class TemplateCreateSerializer(TemplateUpdateSerializer):
    """A new draft template, owned by its creator."""

    networks = serializers.ListField(
        child=serializers.SlugField(max_length=40),
        required=False,
        help_text='Names of the lab\'s networks; default ["lab"].',
    )

    class Meta(TemplateUpdateSerializer.Meta):
        fields = [*TemplateUpdateSerializer.Meta.fields, "networks"]


# Courses


class CourseSerializer(serializers.ModelSerializer):
    """A course. ``join_code`` is shown only to those who run the course."""

    instructors = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)
    template_version = serializers.PrimaryKeyRelatedField(
        queryset=TemplateVersion.objects.all(),
        allow_null=True,
        required=False,
        help_text="Id of a published template version (templates/{id}/versions/).",
    )
    template_name = serializers.CharField(
        source="template_version.template.name", read_only=True, allow_null=True, default=None
    )
    student_count = serializers.IntegerField(read_only=True)
    join_code = serializers.SerializerMethodField(
        help_text="The code students join with; null when disabled or when you do not run the course."
    )
    # Built by hand, not many=True: allow_null then goes to the list (null in answers to whoever
    # does not run the course; refused in requests by validate_endpoints), not to each id.
    endpoints = serializers.ManyRelatedField(
        child_relation=serializers.PrimaryKeyRelatedField(queryset=VCenterEndpoint.objects.all()),
        required=False,
        allow_null=True,
        help_text="The vCenters its labs may be built on; empty: every one its template version serves. "
        "null when you do not run the course.",
    )
    endpoints_in_use = serializers.SerializerMethodField(
        help_text="The names of the vCenters its new labs may go to now (its choice, or all its version serves); "
        "null when you do not run the course."
    )

    class Meta:
        model = Course
        fields = [
            "id",
            "title",
            "code",
            "description",
            "state",
            "template_version",
            "template_name",
            "starts_on",
            "ends_on",
            "instructors",
            "student_count",
            "join_code",
            "endpoints",
            "endpoints_in_use",
            "created_at",
            "updated_at",
        ]

    def validate_endpoints(self, endpoints: list | None) -> list:
        if endpoints is None:
            raise serializers.ValidationError("Give a list of vCenter ids; an empty list means every one.")
        return endpoints

    def to_representation(self, course: Course) -> dict:
        data = super().to_representation(course)
        # The vCenters' ids, as their names (endpoints_in_use), are for its staff.
        if not self._runs(course):
            data["endpoints"] = None
        return data

    def _runs(self, course: Course) -> bool:
        request = self.context.get("request")
        return request is not None and permissions.can_manage_course(request.user, course)

    def get_endpoints_in_use(self, course: Course) -> list[str] | None:
        # The vCenters' names are for its staff (the course page shows them only to them).
        request = self.context.get("request")
        if request is None or not permissions.can_manage_course(request.user, course):
            return None
        return [endpoint.name for endpoint in selectors.course_endpoints(course)]

    def get_join_code(self, course: Course) -> str | None:
        request = self.context.get("request")
        if request is None or not permissions.can_manage_course(request.user, course):
            return None
        return course.join_code


class CourseCreateSerializer(CourseSerializer):
    """A new course starts as a draft; open it with an update."""

    class Meta(CourseSerializer.Meta):
        fields = [name for name in CourseSerializer.Meta.fields if name != "state"]


class EnrollmentSerializer(serializers.ModelSerializer):
    """A student in a course."""

    username = serializers.CharField(source="student.username", read_only=True)
    email = serializers.CharField(source="student.email", read_only=True)
    first_name = serializers.CharField(source="student.first_name", read_only=True)
    last_name = serializers.CharField(source="student.last_name", read_only=True)

    class Meta:
        model = Enrollment
        fields = ["id", "username", "email", "first_name", "last_name", "source", "created_at"]
        read_only_fields = fields


class EnrollmentCreateSerializer(serializers.Serializer):
    """Enroll an existing account (username only), or create a student account and enroll it.

    Giving any of email, first_name, last_name or password creates the account; without a
    password one is generated and answered once.
    """

    username = serializers.CharField(max_length=150)
    email = serializers.EmailField(required=False, allow_blank=True)
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=150)
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=150)
    password = serializers.CharField(
        required=False, allow_blank=True, write_only=True, trim_whitespace=False, style={"input_type": "password"}
    )

    ACCOUNT_FIELDS = ("email", "first_name", "last_name", "password")

    @property
    def creates_account(self) -> bool:
        return any(name in self.validated_data for name in self.ACCOUNT_FIELDS)


class EnrollmentCreatedSerializer(EnrollmentSerializer):
    generated_password = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="The new account's password when Nestlab generated it; shown only in this answer.",
    )

    class Meta(EnrollmentSerializer.Meta):
        fields = [*EnrollmentSerializer.Meta.fields, "generated_password"]
        read_only_fields = fields


class RosterUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text=(
            "CSV, UTF-8, header row required; columns in any order from "
            f"{', '.join(services.ROSTER_COLUMNS)} (username or email required). "
            f"At most {services.ROSTER_MAX_BYTES // 1024} KB and {services.ROSTER_MAX_ROWS} rows."
        )
    )


class CreatedAccountSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(
        allow_null=True, help_text="Generated password, shown only in this answer; null when the file gave one."
    )


class RosterImportSerializer(serializers.Serializer):
    """What a roster upload did."""

    enrolled = serializers.ListField(child=serializers.CharField(), help_text="Usernames newly enrolled.")
    already_enrolled = serializers.ListField(child=serializers.CharField())
    created = CreatedAccountSerializer(many=True, help_text="Student accounts the file created.")

    def to_representation(self, instance: services.RosterImport) -> dict:
        return {
            "enrolled": instance.enrolled,
            "already_enrolled": instance.already_enrolled,
            "created": [{"username": username, "password": password} for username, password in instance.created],
        }


class RosterErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = serializers.DictField(
        help_text='{"lines": {"<line number>": "<problem>"}} for rows, {"file": ["<problem>"]} for the whole file.'
    )


class JoinSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=16, help_text="The course's join code, from its instructor.")


class JoinCodeSerializer(serializers.Serializer):
    enabled = serializers.BooleanField(
        default=True, write_only=True, help_text="true: a fresh code (the old one stops working); false: no code."
    )
    join_code = serializers.CharField(read_only=True, allow_null=True)


class QuotaSerializer(serializers.ModelSerializer):
    """Per-course limits: null is no limit, 0 is none allowed."""

    updated_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = CourseQuota
        fields = [*CourseQuota.LIMIT_FIELDS, "updated_at", "updated_by"]
        read_only_fields = ["updated_at", "updated_by"]
        extra_kwargs = {
            name: {"required": True, "allow_null": True, "min_value": 0} for name in CourseQuota.LIMIT_FIELDS
        }


class UsageBarSerializer(serializers.Serializer):
    """One limit and what the course uses of it."""

    name = serializers.CharField(help_text="The quota field this bar measures.")
    label = serializers.CharField()
    used = serializers.FloatField()
    limit = serializers.IntegerField(allow_null=True, help_text="null: no limit.")
    unit = serializers.CharField()
    percent = serializers.IntegerField(help_text="0-100 of the limit (0 without a limit, 100 when the limit is 0).")
    level = ChoiceField(choices=["ok", "warn", "full"], help_text="warn from 80 %, full at the limit.")
    over = serializers.BooleanField(help_text="Used beyond the limit (lowered below usage): new work is blocked.")


class TopUpSerializer(serializers.ModelSerializer):
    """Extra lab hours or labs for one enrolled student (on top of the course quota)."""

    student = serializers.SlugRelatedField(slug_field="username", queryset=User.objects.all())
    granted_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = QuotaTopUp
        fields = ["id", "student", "extra_lab_hours", "extra_labs", "reason", "granted_by", "created_at"]
        read_only_fields = ["granted_by", "created_at"]


# People


# Lab guides (issue 15): the draft's steps, their checks, the variables. Only the template's
# owners and admins read them: checks carry their answers.


class GuideCheckSerializer(serializers.ModelSerializer):
    """A check of a guide step, as its authors see it (answers and commands included). Which
    fields a kind needs is the model's rule (``GuideCheck.clean``), answered as a 400 in words."""

    class Meta:
        model = GuideCheck
        fields = ["id", "position", *guides.CHECK_FIELDS]
        read_only_fields = ["position"]


class GuideStepSerializer(serializers.ModelSerializer):
    """A step of a template's guide: added at the end; move it by changing its ``position``."""

    body_html = serializers.CharField(read_only=True, help_text="The body rendered and sanitised when saved.")
    checks = GuideCheckSerializer(many=True, read_only=True)

    class Meta:
        model = GuideStep
        fields = ["id", "position", *guides.STEP_FIELDS, "body_html", "checks"]
        read_only_fields = ["position"]


class GuideStepUpdateSerializer(GuideStepSerializer):
    class Meta(GuideStepSerializer.Meta):
        read_only_fields = []
        extra_kwargs = {
            "position": {"required": False, "help_text": "1 for the first step; the others keep their order."}
        }


class GuideVariableSerializer(serializers.ModelSerializer):
    """A value drawn for each lab: ``{{ name }}`` in the guide and its checks, ``guestinfo.nestlab.<name>``
    in the lab's VMs."""

    choices = serializers.ListField(
        child=serializers.CharField(max_length=100),
        max_length=100,
        required=False,
        help_text="The values to pick from (kind `choice`).",
    )

    class Meta:
        model = GuideVariable
        fields = ["id", *guides.VARIABLE_FIELDS]


class GuideImageSerializer(serializers.ModelSerializer):
    """An image of the template's guide and manual: Markdown shows it by its file name
    (``![Topology](topology.png)``); it is served at ``url`` to whoever may read the guide."""

    url = serializers.CharField(read_only=True, help_text="Where the portal serves it.")

    class Meta:
        model = GuideImage
        fields = ["id", "name", "url", "content_type", "size", "created_at"]
        read_only_fields = fields


class GuideImageUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text=f"A PNG, JPEG, GIF or WebP image (known by its bytes; never SVG), at most "
        f"{GUIDE_IMAGE_MAX_BYTES // (1024 * 1024)} MB."
    )
    name = serializers.CharField(
        required=False,
        max_length=90,
        help_text="The name Markdown uses, e.g. topology.png (default: the file's name); an image of the "
        "same name is replaced.",
    )
