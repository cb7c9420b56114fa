"""courses/services.py: every write, its permission check and its bad-input paths."""

from datetime import date

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError

from core import roles
from courses import services
from courses.models import Course, CourseQuota, Enrollment, TemplateVersion
from tests.factories import AdminFactory, EndpointFactory, InstructorFactory, StudentFactory

pytestmark = pytest.mark.django_db
User = get_user_model()


def _template(owner, **kwargs):
    return services.template_create(actor=owner, endpoint=EndpointFactory(), name="Nested vSphere 8", **kwargs)


def _add_vm(template, owner, role="esxi-01", moref="vm-72", networks=("lab",)):
    return services.template_vm_add(
        template=template,
        actor=owner,
        role=role,
        source_moref=moref,
        source_name=role,
        nested_hv_required=True,
        nic_networks=list(networks),
    )


def _published_version(owner):
    template = _template(owner)
    _add_vm(template, owner)
    version = services.template_version_create(template=template, actor=owner)
    spec = dict(version.spec)
    spec["vms"] = [{**vm, "num_cpu": 4, "memory_mb": 16384, "disk_gb": 40.0} for vm in spec["vms"]]
    return services.template_version_publish_succeeded(version=version, spec=spec)


def _course(instructor, **overrides):
    fields = {
        "title": "vSphere 8 administration",
        "code": "vsp8-fall26",
        "starts_on": date(2026, 9, 1),
        "ends_on": date(2026, 12, 20),
        "template_version": _published_version(instructor),
        **overrides,
    }
    return services.course_create(actor=instructor, **fields)


class TestEndpoints:
    def test_admin_connects_a_vcenter_and_the_password_is_encrypted(self):
        endpoint = services.endpoint_create(
            actor=AdminFactory(),
            password="VMware1!",
            name="Campus",
            url="https://vc.example.edu",
            username="administrator@vsphere.local",
            datacenter="DC0",
            compute_path="/DC0/host/C0",
            datastore="ds1",
            lab_switch="vSwitch1",
        )
        assert "VMware1!" not in endpoint.password_ciphertext
        assert endpoint.get_password() == "VMware1!"

    def test_instructors_cannot_connect_vcenters(self):
        with pytest.raises(PermissionDenied, match="Only admins"):
            services.endpoint_create(actor=InstructorFactory(), password="x", name="Mine")

    def test_an_inverted_vlan_range_is_refused_in_words(self):
        with pytest.raises(ValidationError) as refused:
            services.endpoint_update(endpoint=EndpointFactory(), actor=AdminFactory(), vlan_min=3000, vlan_max=2000)
        assert refused.value.message_dict["vlan_max"] == ["The VLAN range ends before it starts."]

    def test_an_empty_password_on_update_keeps_the_stored_one(self):
        endpoint = EndpointFactory(password="keep-me")
        services.endpoint_update(endpoint=endpoint, actor=AdminFactory(), password="", name="Renamed")
        endpoint.refresh_from_db()
        assert endpoint.name == "Renamed"
        assert endpoint.get_password() == "keep-me"

    def test_an_endpoint_with_templates_cannot_be_deleted(self):
        template = _template(InstructorFactory())
        with pytest.raises(ValidationError, match="still hosts 1 template"):
            services.endpoint_delete(endpoint=template.endpoint, actor=AdminFactory())


class TestTemplates:
    def test_the_creator_owns_a_new_template_with_a_lab_network(self):
        owner = InstructorFactory()
        template = _template(owner)
        assert list(template.owners.all()) == [owner]
        assert [network.name for network in template.networks.all()] == ["lab"]

    def test_students_cannot_build_templates(self):
        with pytest.raises(PermissionDenied):
            _template(StudentFactory())

    def test_another_instructor_cannot_edit_it_but_an_admin_can(self):
        template = _template(InstructorFactory())
        with pytest.raises(PermissionDenied):
            services.template_update(template=template, actor=InstructorFactory(), name="Mine now")
        services.template_update(template=template, actor=AdminFactory(), name="Fixed by admin")
        template.refresh_from_db()
        assert template.name == "Fixed by admin"

    def test_every_edit_starts_a_new_draft_revision(self):
        owner = InstructorFactory()
        template = _template(owner)
        first = template.revision
        _add_vm(template, owner)
        assert template.revision == first + 1
        services.template_update(template=template, actor=owner, description="Three hosts")
        assert template.revision == first + 2

    def test_vm_roles_are_unique_and_networks_must_exist(self):
        owner = InstructorFactory()
        template = _template(owner)
        _add_vm(template, owner)
        with pytest.raises(ValidationError, match="already has a VM with the role esxi-01"):
            _add_vm(template, owner, moref="vm-74")
        with pytest.raises(ValidationError, match="No template network called storage"):
            _add_vm(template, owner, role="esxi-02", moref="vm-74", networks=("lab", "storage"))
        assert template.vms.count() == 1

    def test_a_network_in_use_cannot_be_removed(self):
        owner = InstructorFactory()
        template = _template(owner)
        _add_vm(template, owner)
        with pytest.raises(ValidationError, match="still used by esxi-01"):
            services.template_network_remove(network=template.networks.get(), actor=owner)

    def test_publishing_an_empty_template_says_why(self):
        owner = InstructorFactory()
        with pytest.raises(ValidationError, match="no VMs yet"):
            services.template_version_create(template=_template(owner), actor=owner)

    def test_a_vm_without_a_lab_network_blocks_publishing(self):
        owner = InstructorFactory()
        template = _template(owner)
        _add_vm(template, owner, networks=())
        with pytest.raises(ValidationError, match="esxi-01 has no network adapter"):
            services.template_version_create(template=template, actor=owner)

    def test_versions_are_numbered_and_one_publish_runs_at_a_time(self):
        owner = InstructorFactory()
        template = _template(owner)
        _add_vm(template, owner)
        first = services.template_version_create(template=template, actor=owner)
        assert (first.number, first.state) == (1, TemplateVersion.State.PUBLISHING)
        assert first.spec["vms"][0]["nic_networks"] == ["lab"]
        with pytest.raises(ValidationError, match="being published already"):
            services.template_version_create(template=template, actor=owner)
        services.template_version_publish_failed(version=first, reason="esxi-01 is powered on")
        assert not template.versions.exists(), "a failed publish leaves no version"
        second = services.template_version_create(template=template, actor=owner)
        assert second.number == 1, "so it uses up no number (issue 10)"
        sized = [{**vm, "num_cpu": 4, "memory_mb": 16384, "disk_gb": 40.0} for vm in second.spec["vms"]]
        services.template_version_publish_succeeded(version=second, spec={**second.spec, "vms": sized})
        with pytest.raises(ValidationError, match="Nothing changed since v1"):
            services.template_version_create(template=template, actor=owner)
        services.template_update(template=template, actor=owner, description="Now with vSAN")
        assert services.template_version_create(template=template, actor=owner).number == 2

    def test_a_published_version_records_its_totals(self):
        version = _published_version(InstructorFactory())
        assert version.state == TemplateVersion.State.PUBLISHED
        assert (version.vcpu_total, version.memory_mb_total, version.disk_gb_total) == (4, 16384, 40.0)
        assert version.published_at is not None


class TestCourses:
    def test_an_instructor_creates_a_course_they_teach_with_a_quota_and_a_join_code(self):
        instructor = InstructorFactory()
        course = _course(instructor)
        assert list(course.instructors.all()) == [instructor]
        assert CourseQuota.objects.filter(course=course).exists()
        assert len(course.join_code) == 8

    def test_a_course_cannot_end_before_it_starts(self):
        with pytest.raises(ValidationError, match="ends before it starts"):
            _course(InstructorFactory(), starts_on=date(2026, 9, 1), ends_on=date(2026, 8, 1))

    def test_a_course_cannot_pin_an_unpublished_version(self):
        owner = InstructorFactory()
        template = _template(owner)
        _add_vm(template, owner)
        publishing = services.template_version_create(template=template, actor=owner)
        with pytest.raises(ValidationError, match="Only a published template version"):
            _course(owner, template_version=publishing)

    def test_a_course_opens_only_with_a_version(self):
        instructor = InstructorFactory()
        course = _course(instructor, template_version=None)
        with pytest.raises(ValidationError, match="needs a published template version to open"):
            services.course_update(course=course, actor=instructor, state=Course.State.OPEN)

    def test_another_instructor_cannot_change_the_course(self):
        course = _course(InstructorFactory())
        with pytest.raises(PermissionDenied):
            services.course_update(course=course, actor=InstructorFactory(), title="Hijacked")


CSV_GOOD = b"""username,email,first_name,last_name
ana,ana@example.edu,Ana,Alves
,ben@example.edu,Ben,Brown
carla,,Carla,Costa
"""


class TestRoster:
    def test_csv_creates_students_and_enrolls_everyone(self):
        instructor = InstructorFactory()
        course = _course(instructor)
        existing = StudentFactory(username="carla")
        result = services.roster_import_csv(course=course, actor=instructor, data=CSV_GOOD)
        assert sorted(result.enrolled) == ["ana", "ben", "carla"]
        created = dict(result.created)
        assert set(created) == {"ana", "ben"}
        ana = User.objects.get(username="ana")
        assert ana.check_password(created["ana"]) and roles.is_student(ana)
        assert User.objects.get(username="ben").email == "ben@example.edu"
        assert course.enrollments.filter(student=existing, source=Enrollment.Source.CSV).exists()

        again = services.roster_import_csv(course=course, actor=instructor, data=CSV_GOOD)
        assert sorted(again.already_enrolled) == ["ana", "ben", "carla"] and again.created == []

    def test_a_bad_row_is_reported_by_line_and_nothing_is_applied(self):
        instructor = InstructorFactory()
        course = _course(instructor)
        InstructorFactory(username="teacher")
        data = (
            b"username,email\n"
            b"ana,ana@example.edu\n"
            b"bad name!,x@example.edu\n"
            b"ben,not-an-email\n"
            b"teacher,\n"
            b"ana,again@example.edu\n"
        )
        with pytest.raises(services.RosterError) as refused:
            services.roster_import_csv(course=course, actor=instructor, data=data)
        assert set(refused.value.lines) == {3, 4, 5, 6}
        assert "not a valid username" in refused.value.lines[3]
        assert "not an email address" in refused.value.lines[4]
        assert "staff account" in refused.value.lines[5]
        assert "also on line 2" in refused.value.lines[6]
        assert not User.objects.filter(username="ana").exists()
        assert not course.enrollments.exists()

    @pytest.mark.parametrize(
        ("data", "words"),
        [
            (b"", "empty"),
            (b"name,mail\nana,ana@example.edu\n", "header must name columns"),
            ("username\nJos\xe9\n".encode("latin-1"), "not UTF-8"),
            (b"username\n" + b"x" * (1024 * 1024 + 1), "larger than"),
        ],
    )
    def test_unreadable_files_are_refused_in_words(self, data, words):
        instructor = InstructorFactory()
        with pytest.raises(services.RosterError, match=words):
            services.roster_import_csv(course=_course(instructor), actor=instructor, data=data)

    def test_students_cannot_upload_rosters(self):
        course = _course(InstructorFactory())
        with pytest.raises(PermissionDenied):
            services.roster_import_csv(course=course, actor=StudentFactory(), data=CSV_GOOD)

    def test_join_code_enrolls_a_student_in_an_open_course(self):
        instructor = InstructorFactory()
        course = _course(instructor)
        services.course_update(course=course, actor=instructor, state=Course.State.OPEN)
        student = StudentFactory()
        enrollment = services.course_join(student=student, code=course.join_code.lower())
        assert enrollment.course == course and enrollment.source == Enrollment.Source.JOIN_CODE

    def test_join_code_refusals_say_why(self):
        instructor = InstructorFactory()
        course = _course(instructor)
        with pytest.raises(ValidationError, match="not open for enrollment"):
            services.course_join(student=StudentFactory(), code=course.join_code)
        with pytest.raises(ValidationError, match="No course has that join code"):
            services.course_join(student=StudentFactory(), code="NOPE1234")
        with pytest.raises(PermissionDenied):
            services.course_join(student=InstructorFactory(), code=course.join_code)

    def test_rotating_the_join_code_retires_the_old_one(self):
        instructor = InstructorFactory()
        course = _course(instructor)
        services.course_update(course=course, actor=instructor, state=Course.State.OPEN)
        old = course.join_code
        services.join_code_rotate(course=course, actor=instructor)
        assert course.join_code != old
        with pytest.raises(ValidationError):
            services.course_join(student=StudentFactory(), code=old)
        services.join_code_rotate(course=course, actor=instructor, enabled=False)
        assert course.join_code is None


class TestQuotas:
    def test_only_admins_set_quotas(self):
        course = _course(InstructorFactory())
        with pytest.raises(PermissionDenied):
            services.quota_update(course=course, actor=course.instructors.get(), running_labs=10)
        quota = services.quota_update(course=course, actor=AdminFactory(), running_labs=10, snapshots_per_lab=0)
        assert (quota.running_labs, quota.snapshots_per_lab, quota.vcpu_total) == (10, 0, None)

    def test_unknown_limits_are_refused(self):
        with pytest.raises(ValidationError):
            services.quota_update(course=_course(InstructorFactory()), actor=AdminFactory(), gpus=1)

    def test_top_ups_go_to_enrolled_students_only(self):
        instructor = InstructorFactory()
        course = _course(instructor)
        student = StudentFactory()
        with pytest.raises(ValidationError, match="not enrolled"):
            services.top_up_grant(course=course, actor=instructor, student=student, extra_lab_hours=5)
        services.enrollment_add(course=course, actor=instructor, student=student)
        with pytest.raises(ValidationError, match="at least one"):
            services.top_up_grant(course=course, actor=instructor, student=student)
        top_up = services.top_up_grant(course=course, actor=instructor, student=student, extra_lab_hours=5)
        assert top_up.granted_by == instructor


class TestAccounts:
    def test_staff_cannot_be_enrolled_as_students(self):
        instructor = InstructorFactory()
        with pytest.raises(ValidationError, match="staff account"):
            services.enrollment_add(course=_course(instructor), actor=instructor, student=InstructorFactory())


class TestConsoleAccount:
    def test_the_console_account_must_not_be_the_portals_own(self):
        with pytest.raises(ValidationError) as refused:
            services.endpoint_update(
                endpoint=EndpointFactory(username="nestlab@vsphere.local"),
                actor=AdminFactory(),
                console_username="nestlab@vsphere.local",
                console_password="x",
            )
        assert "may only open consoles" in refused.value.message_dict["console_username"][0]

    def test_a_console_account_needs_its_password_and_is_stored_encrypted(self):
        endpoint = EndpointFactory()
        with pytest.raises(ValidationError, match="needs its password"):
            services.endpoint_update(endpoint=endpoint, actor=AdminFactory(), console_username="console@vsphere.local")
        endpoint.refresh_from_db()
        services.endpoint_update(
            endpoint=endpoint,
            actor=AdminFactory(),
            console_username="console@vsphere.local",
            console_password="Console!pass#42",
        )
        endpoint.refresh_from_db()
        # "!" and "#" are not in the ciphertext's base64 alphabet: the plaintext can never appear there by chance.
        assert "Console!pass#42" not in endpoint.console_password_ciphertext
        assert endpoint.get_console_password() == "Console!pass#42"


def test_a_school_sign_in_enrolls_a_student_in_the_open_courses_it_names_once():
    from core.models import AuditEntry
    from courses.models import Course, Enrollment
    from tests.factories import open_course

    open_one, closed = open_course(students=0), open_course(students=0)
    Course.objects.filter(pk=closed.pk).update(state=Course.State.CLOSED)
    student = StudentFactory()
    codes = {open_one.code, closed.code, "no-such-course"}
    added = services.identity_enrollments_apply(user=student, course_codes=codes, source="directory")
    assert [enrollment.course for enrollment in added] == [open_one]
    assert open_one.enrollments.get(student=student).source == Enrollment.Source.IDENTITY
    assert services.identity_enrollments_apply(user=student, course_codes=codes, source="directory") == []
    assert AuditEntry.objects.filter(action="course.enroll_from_identity").count() == 1
    assert services.identity_enrollments_apply(user=InstructorFactory(), course_codes=codes, source="directory") == []


@pytest.mark.django_db
def test_a_course_moved_to_a_version_not_published_to_its_chosen_vcenters_is_refused_in_words():
    """The course's vCenters were checked against its version only when they were chosen: moving
    the course to another version (or choosing them before it had one) left it on vCenters that
    hold no baseline of it, and every Start refused from then on."""
    from courses.models import VersionBaseline
    from tests.factories import open_course, published_version

    course = open_course(students=0)
    instructor = course.instructors.get()
    old = course.template_version
    extra = EndpointFactory()
    VersionBaseline.objects.create(version=old, endpoint=extra, state=VersionBaseline.State.READY)
    services.course_update(course=course, actor=instructor, endpoints=[extra])
    elsewhere = published_version(owner=instructor)  # published to its own vCenter only
    with pytest.raises(ValidationError) as refused:
        services.course_update(course=course, actor=instructor, template_version=elsewhere)
    assert f"{elsewhere} is not published to {extra.name}" in " ".join(refused.value.message_dict["endpoints"])
    course.refresh_from_db()
    assert course.template_version == old, "nothing changed"
    # Naming vCenters it serves in the same change is accepted.
    services.course_update(
        course=course, actor=instructor, template_version=elsewhere, endpoints=[elsewhere.template.endpoint]
    )
    # And vCenters chosen before the course had a version are checked when it gets one.
    draft = services.course_create(
        actor=instructor,
        title="Later",
        code="later-1",
        starts_on=course.starts_on,
        ends_on=course.ends_on,
        endpoints=[extra],
    )
    with pytest.raises(ValidationError):
        services.course_update(course=draft, actor=instructor, template_version=elsewhere)
