"""courses/views.py: the pages of endpoints, templates, courses, rosters and quotas.

Each page is checked for what it shows, that it calls the service (the database changes),
that refusals and rules come back in words, and who may see it.
"""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from core import crypto, roles
from core.models import AuditEntry
from courses import services, usage
from courses.models import Course, CourseQuota, Enrollment, LabTemplate, TemplateVersion, VCenterEndpoint
from tests.factories import TERM_END, TERM_START, AdminFactory, EndpointFactory, InstructorFactory, StudentFactory

pytestmark = pytest.mark.django_db
User = get_user_model()


# Helpers: data built through the services, as the pages would


def make_template(owner, *, endpoint=None, name="Nested vSphere 8", networks=("lab",)) -> LabTemplate:
    return services.template_create(actor=owner, endpoint=endpoint or EndpointFactory(), name=name, networks=networks)


def add_vm(template, owner, role="esxi-01", moref="vm-72", nics=("lab",)):
    return services.template_vm_add(
        template=template,
        actor=owner,
        role=role,
        source_moref=moref,
        source_name=role,
        source_path=f"/DC0/vm/Lab/{role}",
        nic_networks=list(nics),
    )


def publish(template, owner) -> TemplateVersion:
    """A published version without vCenter: what the publish job records on success."""
    version = services.template_version_create(template=template, actor=owner)
    spec = dict(version.spec)
    spec["vms"] = [{**vm, "num_cpu": 4, "memory_mb": 16384, "disk_gb": 20.0} for vm in spec["vms"]]
    return services.template_version_publish_succeeded(version=version, spec=spec)


def make_course(instructor, *, version=None, code="vsp8-fall26", state=None) -> Course:
    course = services.course_create(
        actor=instructor,
        title="vSphere 8 administration",
        code=code,
        starts_on=TERM_START,
        ends_on=TERM_END,
        template_version=version,
    )
    if state:
        services.course_update(course=course, actor=instructor, state=state)
    return course


def published_course(instructor, **kwargs) -> Course:
    template = make_template(instructor)
    add_vm(template, instructor)
    return make_course(instructor, version=publish(template, instructor), **kwargs)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# vCenter endpoints


ENDPOINT_POST = {
    "name": "Campus vCenter",
    "url": "https://vc.example.edu",
    "username": "nestlab@vsphere.local",
    "verify_tls": "on",
    "datacenter": "DC0",
    "compute_path": "/DC0/host/DC0_C0",
    "datastore": "LocalDS_0",
    "lab_switch": "vSwitch0",
    "vlan_min": "2000",
    "vlan_max": "2099",
    "concurrency_limit": "8",
}


def test_admin_connects_a_vcenter_and_its_password_is_stored_encrypted(client):
    client.force_login(AdminFactory())
    page = client.get(reverse("courses:endpoint-create"))
    assert page.status_code == 200
    assert b"Connect a vCenter" in page.content

    response = client.post(reverse("courses:endpoint-create"), {**ENDPOINT_POST, "password": "s3cret!"}, follow=True)
    endpoint = VCenterEndpoint.objects.get(name="Campus vCenter")
    assert endpoint.get_password() == "s3cret!"
    assert "s3cret!" not in endpoint.password_ciphertext
    assert any("Campus vCenter is connected" in text for text in messages_of(response))
    assert reverse("courses:endpoint-edit", args=[endpoint.pk]).encode() in response.content


def test_a_new_vcenter_needs_a_password(client):
    client.force_login(AdminFactory())
    response = client.post(reverse("courses:endpoint-create"), {**ENDPOINT_POST, "password": ""})
    assert response.status_code == 200
    assert response.context["form"].errors["password"]
    assert not VCenterEndpoint.objects.exists()


def test_endpoint_rules_come_back_on_the_form(client):
    client.force_login(AdminFactory())
    response = client.post(
        reverse("courses:endpoint-create"), {**ENDPOINT_POST, "password": "x", "vlan_min": "3000", "vlan_max": "2000"}
    )
    assert b"The VLAN range ends before it starts." in response.content
    assert not VCenterEndpoint.objects.exists()


def test_the_edit_page_never_shows_the_password_and_empty_keeps_it(client):
    endpoint = EndpointFactory(name="Campus vCenter", password="kept-secret", verify_tls=True)
    client.force_login(AdminFactory())
    page = client.get(reverse("courses:endpoint-edit", args=[endpoint.pk]))
    assert page.status_code == 200
    assert b"kept-secret" not in page.content
    assert endpoint.password_ciphertext.encode() not in page.content

    client.post(
        reverse("courses:endpoint-edit", args=[endpoint.pk]),
        {**ENDPOINT_POST, "name": "Renamed", "password": "", "concurrency_limit": "4"},
    )
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.concurrency_limit, endpoint.get_password()) == ("Renamed", 4, "kept-secret")

    client.post(reverse("courses:endpoint-edit", args=[endpoint.pk]), {**ENDPOINT_POST, "password": "new-one"})
    endpoint.refresh_from_db()
    assert endpoint.get_password() == "new-one"


def test_an_endpoint_with_templates_cannot_be_removed_and_says_why(client):
    admin = AdminFactory()
    endpoint = EndpointFactory(name="Busy")
    make_template(admin, endpoint=endpoint)
    client.force_login(admin)
    response = client.post(reverse("courses:endpoint-delete", args=[endpoint.pk]), follow=True)
    assert any("still hosts 1 template" in text for text in messages_of(response))
    assert VCenterEndpoint.objects.filter(pk=endpoint.pk).exists()

    spare = EndpointFactory(name="Spare")
    client.post(reverse("courses:endpoint-delete", args=[spare.pk]))
    assert not VCenterEndpoint.objects.filter(pk=spare.pk).exists()


@pytest.mark.parametrize("factory", [InstructorFactory, StudentFactory])
def test_only_admins_touch_endpoints(client, factory):
    endpoint = EndpointFactory()
    client.force_login(factory())
    assert client.get(reverse("courses:endpoint-create")).status_code == 403
    response = client.get(reverse("courses:endpoint-edit", args=[endpoint.pk]))
    assert response.status_code == 403
    assert b"Only admins" in response.content
    assert client.post(reverse("courses:endpoint-create"), {**ENDPOINT_POST, "password": "x"}).status_code == 403
    assert client.post(reverse("courses:endpoint-delete", args=[endpoint.pk])).status_code == 403
    assert VCenterEndpoint.objects.count() == 1


def test_admin_home_links_endpoint_pages_courses_and_people(client):
    endpoint = EndpointFactory(name="Campus vCenter")
    instructor = InstructorFactory()
    make_course(instructor)
    client.force_login(AdminFactory())
    content = client.get(reverse("home")).content
    assert reverse("courses:endpoint-create").encode() in content
    assert reverse("courses:endpoint-edit", args=[endpoint.pk]).encode() in content
    assert reverse("accounts:people").encode() in content
    assert b"vSphere 8 administration" in content


# People


def test_instructor_creates_a_template_with_its_networks(client):
    instructor = InstructorFactory()
    endpoint = EndpointFactory(name="Campus vCenter")
    client.force_login(instructor)
    assert client.get(reverse("courses:template-create")).status_code == 200
    response = client.post(
        reverse("courses:template-create"),
        {
            "name": "Nested vSphere 8",
            "endpoint": endpoint.pk,
            "description": "Three hosts",
            "clone_mode": "full",
            "networks": "lab, storage",
        },
    )
    template = LabTemplate.objects.get(name="Nested vSphere 8")
    assert response.status_code == 302
    assert response.url == reverse("courses:template-detail", args=[template.pk]) + "#add-vm"
    assert template.linked_clones is False
    assert sorted(template.networks.values_list("name", flat=True)) == ["lab", "storage"]
    assert list(template.owners.all()) == [instructor]

    listing = client.get(reverse("courses:template-list"))
    assert b"Nested vSphere 8" in listing.content


def test_bad_network_names_are_said_on_the_form(client):
    client.force_login(InstructorFactory())
    response = client.post(
        reverse("courses:template-create"),
        {"name": "T", "endpoint": EndpointFactory().pk, "clone_mode": "linked", "networks": "lab, my net"},
    )
    assert "'my net' is not a network name" in " ".join(response.context["form"].errors["networks"])
    assert not LabTemplate.objects.exists()


def test_template_page_shows_vms_networks_versions_and_the_not_published_banner(client):
    instructor = InstructorFactory()
    template = make_template(instructor, networks=("lab", "storage"))
    add_vm(template, instructor, nics=("lab", "storage"))
    client.force_login(instructor)
    response = client.get(reverse("courses:template-detail", args=[template.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Not published yet." in content
    assert "NIC 2: storage" in content
    assert reverse("labs:template-publish", args=[template.pk]) in content
    assert reverse("labs:endpoint-inventory", args=[template.endpoint_id]) in content
    assert "Publish v1" in content


def test_the_banner_tells_of_changes_since_the_published_version(client):
    instructor = InstructorFactory()
    template = make_template(instructor)
    add_vm(template, instructor)
    publish(template, instructor)
    client.force_login(instructor)
    url = reverse("courses:template-detail", args=[template.pk])
    assert b"Unpublished changes" not in client.get(url).content

    client.post(url, {"name": "Nested vSphere 8", "clone_mode": "linked", "manual": "# Day 1"})
    content = client.get(url).content.decode()
    assert "Unpublished changes." in content
    assert "differs from v1" in content
    assert "Publish v2" in content


def test_details_and_manual_are_saved_and_the_manual_is_rendered(client):
    instructor = InstructorFactory()
    template = make_template(instructor)
    client.force_login(instructor)
    url = reverse("courses:template-detail", args=[template.pk])
    manual = "# Day 1\n\nLog in to `esxi-01`.\n\n<script>alert(1)</script>"
    response = client.post(
        url, {"name": "Renamed", "description": "d", "clone_mode": "full", "manual": manual}, follow=True
    )
    template.refresh_from_db()
    assert (template.name, template.linked_clones, template.manual) == ("Renamed", False, manual)
    content = response.content.decode()
    assert "<h1" in content and "Day 1</h1>" in content
    assert "<code>esxi-01</code>" in content
    assert "<script>alert(1)</script>" not in content


def test_the_manual_preview_renders_like_students_see_it_without_scripts(client):
    client.force_login(InstructorFactory())
    response = client.post(reverse("courses:markdown-preview"), {"text": "**bold** <img src=x onerror=alert(1)>"})
    assert response.status_code == 200
    assert b"<strong>bold</strong>" in response.content
    assert b"onerror" not in response.content


def test_the_editors_own_field_is_previewed_and_an_empty_manual_says_so(client):
    """The editor posts its form (htmx): the manual's field is ``manual``."""
    client.force_login(InstructorFactory())
    response = client.post(reverse("courses:markdown-preview"), {"name": "Lab", "manual": "# Nested vSphere"})
    assert response.status_code == 200 and b"<h1" in response.content and b"Nested vSphere" in response.content
    empty = client.post(reverse("courses:markdown-preview"), {"manual": ""})
    assert empty.content == b'<p class="muted">No manual yet.</p>'


def test_a_preview_over_the_manual_limit_is_a_400_in_words(client):
    client.force_login(InstructorFactory())
    response = client.post(reverse("courses:markdown-preview"), {"text": "[" * 70_000})
    assert response.status_code == 400
    assert response.content.decode() == "The manual is 70,000 characters long; at most 65,536 are allowed."


def test_a_manual_over_the_limit_on_the_template_page_is_refused_and_kept_in_the_form(client):
    instructor = InstructorFactory()
    template = make_template(instructor)
    client.force_login(instructor)
    response = client.post(
        reverse("courses:template-detail", args=[template.pk]),
        {"name": template.name, "description": "", "clone_mode": "linked", "manual": "x" * 70_000},
    )
    assert response.status_code == 400
    assert "at most 65536 characters (it has 70000)" in response.content.decode()
    template.refresh_from_db()
    assert template.manual == ""


def test_students_get_no_manual_preview(client):
    client.force_login(StudentFactory())
    assert client.post(reverse("courses:markdown-preview"), {"text": "x"}).status_code == 403


def test_networks_are_added_and_removed_and_a_used_one_is_kept_with_a_reason(client):
    instructor = InstructorFactory()
    template = make_template(instructor)
    add_vm(template, instructor)
    client.force_login(instructor)
    response = client.post(
        reverse("courses:template-network-add", args=[template.pk]), {"name": "storage", "description": "iSCSI"}
    )
    assert response.status_code == 302
    storage = template.networks.get(name="storage")

    duplicate = client.post(reverse("courses:template-network-add", args=[template.pk]), {"name": "storage"})
    assert b"already has a network called storage" in duplicate.content

    lab = template.networks.get(name="lab")
    response = client.post(reverse("courses:template-network-remove", args=[template.pk, lab.pk]), follow=True)
    assert any("still used by esxi-01" in text for text in messages_of(response))
    assert template.networks.filter(name="lab").exists()

    client.post(reverse("courses:template-network-remove", args=[template.pk, storage.pk]))
    assert not template.networks.filter(name="storage").exists()


def test_a_picked_vm_is_added_with_one_network_per_adapter(client):
    instructor = InstructorFactory()
    template = make_template(instructor, networks=("lab", "storage"))
    client.force_login(instructor)
    post = {
        "source_moref": "vm-72",
        "source_name": "esxi-01",
        "source_path": "/DC0/vm/Lab/esxi-01",
        "role": "esxi-01",
        "boot_order": "2",
        "cpu_override": "",
        "memory_mb_override": "8192",
        "nested_hv_required": "on",
        "nic_network": ["lab", "storage"],
    }
    response = client.post(reverse("courses:template-vm-add", args=[template.pk]), post)
    assert response.status_code == 302
    vm = template.vms.get()
    assert (vm.role, vm.boot_order, vm.cpu_override, vm.memory_mb_override, vm.nested_hv_required) == (
        "esxi-01",
        2,
        None,
        8192,
        True,
    )
    assert [nic.network.name for nic in vm.nics.all()] == ["lab", "storage"]

    again = client.post(reverse("courses:template-vm-add", args=[template.pk]), {**post, "source_moref": "vm-74"})
    assert again.status_code == 200
    assert b"already has a VM with the role esxi-01" in again.content
    assert b'data-restore="1"' in again.content  # the picker's form comes back with the posted values
    assert template.vms.count() == 1


def test_a_vm_needs_an_adapter_on_a_template_network(client):
    instructor = InstructorFactory()
    template = make_template(instructor)
    client.force_login(instructor)
    post = {"source_moref": "vm-72", "source_name": "esxi-01", "role": "esxi-01", "boot_order": "1"}
    response = client.post(reverse("courses:template-vm-add", args=[template.pk]), post)
    assert b"at least one adapter on a template network" in response.content
    response = client.post(reverse("courses:template-vm-add", args=[template.pk]), {**post, "nic_network": "nope"})
    assert b"Pick a template network for every adapter" in response.content
    assert not template.vms.exists()


def test_a_vm_is_edited_and_removed(client):
    instructor = InstructorFactory()
    template = make_template(instructor, networks=("lab", "storage"))
    vm = add_vm(template, instructor, nics=("lab", "lab"))
    client.force_login(instructor)
    response = client.post(
        reverse("courses:template-vm-edit", args=[template.pk, vm.pk]),
        {"role": "esxi-a", "boot_order": "3", "cpu_override": "8", "nic_network": ["lab", "storage"]},
    )
    assert response.status_code == 302
    vm.refresh_from_db()
    assert (vm.role, vm.boot_order, vm.cpu_override, vm.nested_hv_required) == ("esxi-a", 3, 8, False)
    assert [nic.network.name for nic in vm.nics.all()] == ["lab", "storage"]

    bad = client.post(
        reverse("courses:template-vm-edit", args=[template.pk, vm.pk]),
        {"role": "not a slug", "boot_order": "1", "nic_network": ["lab"]},
    )
    assert bad.status_code == 200
    assert bad.context["open_vm"] == vm.pk

    client.post(reverse("courses:template-vm-remove", args=[template.pk, vm.pk]))
    assert not template.vms.exists()


def test_another_instructor_reads_a_template_but_cannot_change_it(client):
    owner = InstructorFactory()
    template = make_template(owner)
    vm = add_vm(template, owner)
    client.force_login(InstructorFactory())
    url = reverse("courses:template-detail", args=[template.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert b"only its owners can change it" in page.content
    assert reverse("labs:template-publish", args=[template.pk]).encode() not in page.content

    response = client.post(url, {"name": "Hijacked", "clone_mode": "linked"}, follow=True)
    assert any("You cannot edit this template." in text for text in messages_of(response))
    client.post(reverse("courses:template-vm-remove", args=[template.pk, vm.pk]))
    client.post(reverse("courses:template-network-add", args=[template.pk]), {"name": "extra"})
    template.refresh_from_db()
    assert template.name == "Nested vSphere 8"
    assert template.vms.exists()
    assert not template.networks.filter(name="extra").exists()


def test_students_see_no_templates(client):
    template = make_template(InstructorFactory())
    client.force_login(StudentFactory())
    assert client.get(reverse("courses:template-list")).status_code == 403
    assert client.get(reverse("courses:template-create")).status_code == 403
    assert client.get(reverse("courses:template-detail", args=[template.pk])).status_code == 403
    assert client.post(reverse("courses:template-vm-add", args=[template.pk]), {}).status_code == 404


# Courses


def test_instructor_creates_a_course_from_a_published_version(client):
    instructor = InstructorFactory()
    template = make_template(instructor)
    add_vm(template, instructor)
    version = publish(template, instructor)
    client.force_login(instructor)
    page = client.get(reverse("courses:course-create"))
    assert b"Nested vSphere 8 v1" in page.content
    response = client.post(
        reverse("courses:course-create"),
        {
            "title": "vSphere 8 administration",
            "code": "vsp8-fall26",
            "starts_on": "2026-09-01",
            "ends_on": "2026-12-18",
            "template_version": version.pk,
        },
    )
    course = Course.objects.get(code="vsp8-fall26")
    assert response.url == reverse("courses:course-detail", args=[course.pk])
    assert course.template_version == version
    assert list(course.instructors.all()) == [instructor]
    assert course.join_code
    assert b"vSphere 8 administration" in client.get(reverse("courses:course-list")).content


def test_course_dates_in_the_wrong_order_are_said_on_the_form(client):
    client.force_login(InstructorFactory())
    response = client.post(
        reverse("courses:course-create"),
        {"title": "T", "code": "t1", "starts_on": "2026-09-01", "ends_on": "2026-08-01"},
    )
    assert b"The course ends before it starts." in response.content
    assert not Course.objects.exists()


def test_students_cannot_create_courses(client):
    client.force_login(StudentFactory())
    assert client.get(reverse("courses:course-create")).status_code == 403


def test_course_state_changes_and_a_course_without_a_lab_cannot_open(client):
    instructor = InstructorFactory()
    bare = make_course(instructor, code="bare")
    client.force_login(instructor)
    response = client.post(reverse("courses:course-state", args=[bare.pk]), {"state": "open"}, follow=True)
    assert any("needs a published template version to open" in text for text in messages_of(response))
    bare.refresh_from_db()
    assert bare.state == "draft"

    course = published_course(instructor)
    for state in ("open", "closed", "archived"):
        client.post(reverse("courses:course-state", args=[course.pk]), {"state": state})
        course.refresh_from_db()
        assert course.state == state


def test_course_details_are_edited(client):
    instructor = InstructorFactory()
    course = make_course(instructor)
    client.force_login(instructor)
    response = client.post(
        reverse("courses:course-edit", args=[course.pk]),
        {"title": "New title", "code": course.code, "starts_on": "2026-09-02", "ends_on": "2026-12-18"},
    )
    assert response.status_code == 302
    course.refresh_from_db()
    assert (course.title, course.starts_on) == ("New title", datetime.date(2026, 9, 2))


def test_course_dates_are_written_like_their_date_pickers_on_every_page(client):
    """Issue 10: the page said "Fri 4 Dec 2026" (the course list "Dec 4") beside pickers showing
    12/04/2026. Every page writes the pickers' ISO value in a <time> that static/js/nestlab.js
    writes as the browser writes its pickers (tests/browser/courses/test_instructor_flow.py)."""
    instructor = InstructorFactory()
    course = make_course(instructor)
    services.enrollment_add(course=course, actor=instructor, student=StudentFactory(username="sam"))
    starts = f'<time datetime="{TERM_START:%Y-%m-%d}" data-date>{TERM_START:%Y-%m-%d}</time>'
    ends = f'<time datetime="{TERM_END:%Y-%m-%d}" data-date>{TERM_END:%Y-%m-%d}</time>'
    client.force_login(instructor)
    page = client.get(reverse("courses:course-detail", args=[course.pk])).content.decode()
    assert f"{starts} to {ends}" in page
    assert f'type="date" name="starts_on" value="{TERM_START:%Y-%m-%d}"' in page
    assert f"{starts} \N{EN DASH} {ends}" in client.get(reverse("courses:course-list")).content.decode()
    client.force_login(User.objects.get(username="sam"))
    assert f"{starts} \N{EN DASH} {ends}" in client.get(reverse("home")).content.decode()


def test_join_code_is_rotated_and_turned_off(client):
    instructor = InstructorFactory()
    course = make_course(instructor)
    old = course.join_code
    client.force_login(instructor)
    client.post(reverse("courses:course-join-code", args=[course.pk]), {"action": "rotate"})
    course.refresh_from_db()
    assert course.join_code and course.join_code != old
    page = client.get(reverse("courses:course-detail", args=[course.pk]))
    assert course.join_code.encode() in page.content
    client.post(reverse("courses:course-join-code", args=[course.pk]), {"action": "disable"})
    course.refresh_from_db()
    assert course.join_code is None
    assert b"Joining with a code is off." in client.get(reverse("courses:course-detail", args=[course.pk])).content


def test_a_co_instructor_is_added_by_user_name(client):
    instructor = InstructorFactory()
    colleague = InstructorFactory(username="colleague")
    course = make_course(instructor)
    client.force_login(instructor)
    client.post(reverse("courses:course-instructor-add", args=[course.pk]), {"username": "colleague"})
    assert colleague in course.instructors.all()
    response = client.post(reverse("courses:course-instructor-add", args=[course.pk]), {"username": "ghost"})
    assert b"No account has that user name." in response.content
    StudentFactory(username="pupil")
    response = client.post(reverse("courses:course-instructor-add", args=[course.pk]), {"username": "pupil"})
    assert b"pupil is not an instructor." in response.content


def test_a_co_instructor_is_removed_but_never_the_last_one(client):
    instructor, colleague = InstructorFactory(), InstructorFactory(username="colleague")
    course = make_course(instructor)
    services.course_instructor_add(course=course, actor=instructor, instructor=colleague)
    remove = reverse("courses:course-instructor-remove", args=[course.pk, colleague.pk])
    client.force_login(instructor)
    assert remove in client.get(reverse("courses:course-detail", args=[course.pk])).content.decode()

    response = client.post(remove, follow=True)
    assert "colleague no longer teaches this course." in messages_of(response)
    assert list(course.instructors.all()) == [instructor]
    response = client.post(reverse("courses:course-instructor-remove", args=[course.pk, instructor.pk]), follow=True)
    assert messages_of(response) == [
        f"{instructor.username} is the only instructor of {course.code}; add another first."
    ]
    assert list(course.instructors.all()) == [instructor]
    client.force_login(colleague)  # it is no longer theirs to see
    assert client.get(reverse("courses:course-detail", args=[course.pk])).status_code == 404


def test_a_student_of_the_course_cannot_remove_its_instructor(client):
    instructor, colleague, student = InstructorFactory(), InstructorFactory(), StudentFactory()
    course = make_course(instructor)
    services.course_instructor_add(course=course, actor=instructor, instructor=colleague)
    services.enrollment_add(course=course, actor=instructor, student=student)
    client.force_login(student)
    response = client.post(reverse("courses:course-instructor-remove", args=[course.pk, colleague.pk]), follow=True)
    assert messages_of(response) == ["Only this course's instructors can change it."]
    assert course.instructors.count() == 2
    # Said and recorded (it was only said: issue 12).
    [entry] = AuditEntry.objects.filter(category="refusal")
    assert entry.actor == student and entry.detail.startswith("Only this course's instructors can change it.")


def test_the_course_page_writes_nothing(client):
    """A GET once created the course's quota row (issue 12): pages read, services write."""
    instructor = InstructorFactory()
    course = make_course(instructor)
    CourseQuota.objects.filter(course=course).delete()
    client.force_login(instructor)
    assert client.get(reverse("courses:course-detail", args=[course.pk])).status_code == 200
    assert not CourseQuota.objects.filter(course=course).exists()


def test_an_existing_student_is_enrolled_and_removed(client):
    instructor = InstructorFactory()
    course = make_course(instructor)
    student = StudentFactory(username="sam")
    client.force_login(instructor)
    response = client.post(reverse("courses:roster-add", args=[course.pk]), {"username": "sam"}, follow=True)
    assert any("sam is enrolled" in text for text in messages_of(response))
    enrollment = Enrollment.objects.get(course=course, student=student)
    assert b"sam@example.edu" in response.content

    client.post(reverse("courses:roster-remove", args=[course.pk, enrollment.pk]))
    assert not Enrollment.objects.filter(pk=enrollment.pk).exists()


def test_a_new_student_gets_a_generated_password_shown_once(client):
    instructor = InstructorFactory()
    course = make_course(instructor)
    client.force_login(instructor)
    posted = client.post(
        reverse("courses:roster-add", args=[course.pk]),
        {"username": "newbie", "first_name": "New", "last_name": "Bie", "email": "newbie@example.edu"},
    )
    # Redirect after post: a reload of the page that shows the password does not post again.
    assert posted.status_code == 302
    assert posted["Location"] == reverse("courses:course-detail", args=[course.pk]) + "#created-accounts"
    response = client.get(posted["Location"])
    assert any("newbie is enrolled" in text for text in messages_of(response))
    ((username, password),) = response.context["created_accounts"]
    newbie = User.objects.get(username="newbie")
    assert username == "newbie" and newbie.check_password(password)
    assert password.encode() in response.content
    assert roles.is_student(newbie)
    assert Enrollment.objects.filter(course=course, student=newbie).exists()

    again = client.get(reverse("courses:course-detail", args=[course.pk]))
    assert password.encode() not in again.content


def test_staff_accounts_cannot_be_enrolled(client):
    instructor = InstructorFactory()
    course = make_course(instructor)
    InstructorFactory(username="teacher2")
    client.force_login(instructor)
    response = client.post(reverse("courses:roster-add", args=[course.pk]), {"username": "teacher2"})
    assert b"teacher2 is a staff account, not a student." in response.content
    assert not course.enrollments.exists()


def test_a_roster_csv_is_applied_and_generated_passwords_are_listed(client):
    instructor = InstructorFactory()
    course = make_course(instructor)
    StudentFactory(username="already")
    services.enrollment_add(course=course, actor=instructor, student=User.objects.get(username="already"))
    client.force_login(instructor)
    data = (
        b"username,email,first_name,last_name,password\n"
        b"ada,ada@example.edu,Ada,Lovelace,\n"
        b"grace,grace@example.edu,Grace,Hopper,given-password-1\n"
        b"already,,,,\n"
    )
    posted = client.post(
        reverse("courses:roster-upload", args=[course.pk]),
        {"file": SimpleUploadedFile("roster.csv", data, content_type="text/csv")},
    )
    # Redirect after post (issue 10: the result stayed on the upload's URL, a reload posted again).
    assert posted.status_code == 302
    assert posted["Location"] == reverse("courses:course-detail", args=[course.pk]) + "#roster-result"
    response = client.get(posted["Location"])
    result = response.context["roster_result"]
    assert sorted(result.enrolled) == ["ada", "grace"]
    assert result.already_enrolled == ["already"]
    created = dict(response.context["created_accounts"])
    assert list(created) == ["ada"]  # grace's password came from the file: not shown back
    assert User.objects.get(username="ada").check_password(created["ada"])
    assert b"given-password-1" not in response.content
    assert b"Roster uploaded." in response.content
    assert b"2 enrolled, of whom 2 with a new account; 1 already were: already." in response.content
    assert b"Passwords that came with the file are not shown." in response.content
    assert course.enrollments.count() == 3

    again = client.get(posted["Location"])
    assert "roster_result" not in again.context and created["ada"].encode() not in again.content, "shown once"


def test_a_generated_password_waits_for_its_page_encrypted_and_is_gone_after(client):
    """Between the redirect and the page, the password is in the session, never in clear."""
    from django.contrib.sessions.models import Session

    instructor = InstructorFactory()
    course = make_course(instructor)
    client.force_login(instructor)
    data = b"username,email\nada,ada@example.edu\n"
    posted = client.post(
        reverse("courses:roster-upload", args=[course.pk]),
        {"file": SimpleUploadedFile("roster.csv", data, content_type="text/csv")},
    )
    stored = Session.objects.get(session_key=client.session.session_key)
    kept = stored.get_decoded()[f"courses.roster_outcome.{course.pk}"]
    ((username, ciphertext),) = kept["created"]
    assert username == "ada" and kept["result"]["created"] == [["ada", None]]
    password = crypto.decrypt(ciphertext)
    assert User.objects.get(username="ada").check_password(password)
    assert password not in stored.session_data and password not in str(stored.get_decoded())

    assert dict(client.get(posted["Location"]).context["created_accounts"]) == {"ada": password}
    stored = Session.objects.get(session_key=client.session.session_key)
    assert f"courses.roster_outcome.{course.pk}" not in stored.get_decoded()


def test_a_roster_with_problems_is_listed_by_line_and_nothing_is_applied(client):
    instructor = InstructorFactory()
    course = make_course(instructor)
    InstructorFactory(username="teacher2")
    client.force_login(instructor)
    data = b"username,email\nada,ada@example.edu\nbob,not-an-email\nteacher2,\nada,\n"
    response = client.post(
        reverse("courses:roster-upload", args=[course.pk]),
        {"file": SimpleUploadedFile("roster.csv", data, content_type="text/csv")},
    )
    content = response.content.decode()
    assert "nothing changed" in content
    assert "line 3: &#x27;not-an-email&#x27; is not an email address" in content
    assert "line 4: &#x27;teacher2&#x27; is a staff account, not a student" in content
    assert "line 5: &#x27;ada&#x27; is also on line 2" in content
    assert not course.enrollments.exists()
    assert not User.objects.filter(username="ada").exists()


def test_a_roster_with_a_bad_header_says_which_columns_it_takes(client):
    instructor = InstructorFactory()
    course = make_course(instructor)
    client.force_login(instructor)
    response = client.post(
        reverse("courses:roster-upload", args=[course.pk]),
        {"file": SimpleUploadedFile("roster.csv", b"login,mail\nada,a@x.edu\n")},
    )
    assert b"The header must name columns from username, email, first_name, last_name, password" in response.content


def test_the_roster_columns_are_documented_on_the_page(client):
    instructor = InstructorFactory()
    course = make_course(instructor)
    client.force_login(instructor)
    content = client.get(reverse("courses:course-detail", args=[course.pk])).content.decode()
    for column in ("username", "email", "first_name", "last_name", "password"):
        assert f"<code>{column}</code>" in content


# Quotas and usage


def test_admin_sets_a_quota_blank_means_no_limit_zero_none(client):
    admin = AdminFactory()
    course = make_course(InstructorFactory())
    client.force_login(admin)
    page = client.get(reverse("courses:course-detail", args=[course.pk]))
    assert b"Blank means no limit; 0 means none allowed." in page.content
    response = client.post(
        reverse("courses:quota-edit", args=[course.pk]),
        {"running_labs": "10", "vcpu_total": "0", "memory_gb_total": "", "labs_per_student": "2"},
    )
    assert response.status_code == 302
    quota = CourseQuota.objects.get(course=course)
    assert (quota.running_labs, quota.vcpu_total, quota.memory_gb_total, quota.labs_per_student) == (10, 0, None, 2)
    assert quota.updated_by == admin


def test_a_negative_limit_is_refused_on_the_form(client):
    course = make_course(InstructorFactory())
    client.force_login(AdminFactory())
    response = client.post(reverse("courses:quota-edit", args=[course.pk]), {"running_labs": "-1"})
    assert response.status_code == 200
    assert response.context["quota_form"].errors["running_labs"]


def test_instructors_see_usage_but_cannot_set_quotas(client):
    instructor = InstructorFactory()
    course = make_course(instructor)
    client.force_login(instructor)
    page = client.get(reverse("courses:course-detail", args=[course.pk]))
    assert page.context["quota_form"] is None
    assert b"Limits are set by admins." in page.content
    assert b'data-bar="vcpu_total"' in page.content
    response = client.post(reverse("courses:quota-edit", args=[course.pk]), {"running_labs": "99"}, follow=True)
    assert any("Only admins can set quotas." in text for text in messages_of(response))
    assert CourseQuota.objects.get(course=course).running_labs is None


@pytest.fixture
def measured_usage(monkeypatch):
    """A usage source as the labs app will register: 9 of 10 running labs, 20 vCPU, 64 GB."""
    monkeypatch.setattr(usage, "_source", lambda course: usage.Usage(running_labs=9, vcpu=20, memory_gb=64))
    monkeypatch.setattr(usage, "_student_source", lambda course, student: usage.StudentUsage(labs=1, lab_hours=3))


def test_usage_bars_turn_yellow_from_80_and_red_at_100_and_explain_a_lowered_limit(client, measured_usage):
    course = make_course(InstructorFactory())
    client.force_login(AdminFactory())
    client.post(
        reverse("courses:quota-edit", args=[course.pk]),
        {"running_labs": "10", "vcpu_total": "16", "memory_gb_total": "64"},
    )
    page = client.get(reverse("courses:course-detail", args=[course.pk]))
    bars = {bar.name: bar for bar in page.context["bars"]}
    assert (bars["running_labs"].level, bars["memory_gb_total"].level, bars["vcpu_total"].level) == (
        "warn",
        "full",
        "full",
    )
    content = page.content.decode()
    assert 'class="usage level-warn" data-bar="running_labs"' in content
    assert "9 of 10 · 90 %" in content
    assert "Over quota." in content
    assert "it was lowered below what is in use. New work of this kind is blocked until usage drops below 16" in content
    assert "At the limit: nothing more of this kind can start." in content  # memory: 64 of 64


def test_instructor_grants_a_top_up_and_the_student_sees_it_in_their_limits(client, measured_usage):
    instructor = InstructorFactory()
    course = published_course(instructor, state="open")
    student = StudentFactory(username="sam")
    services.enrollment_add(course=course, actor=instructor, student=student)
    services.quota_update(course=course, actor=AdminFactory(), labs_per_student=1, lab_hours_per_student=10)
    client.force_login(instructor)
    response = client.post(
        reverse("courses:top-up-grant", args=[course.pk]),
        {"student": student.pk, "extra_lab_hours": "5", "extra_labs": "0", "reason": "lost time to an outage"},
        follow=True,
    )
    assert any("sam got their top-up" in text for text in messages_of(response))
    assert b"lost time to an outage" in response.content

    nothing = client.post(
        reverse("courses:top-up-grant", args=[course.pk]), {"student": student.pk, "extra_lab_hours": "0"}
    )
    assert b"A top-up adds at least one lab hour or one lab." in nothing.content

    client.force_login(student)
    page = client.get(reverse("courses:course-detail", args=[course.pk]))
    bars = {bar.name: bar for bar in page.context["bars"]}
    assert (bars["lab_hours_per_student"].used, bars["lab_hours_per_student"].limit) == (3, 15)
    assert bars["labs_per_student"].level == "full"


# Students


def test_the_student_course_page_shows_the_manual_and_their_usage_but_no_roster(client):
    instructor = InstructorFactory()
    template = make_template(instructor)
    add_vm(template, instructor)
    services.template_update(template=template, actor=instructor, manual="## Step 1\n\nPower on *esxi-01*.")
    course = make_course(instructor, version=publish(template, instructor), state="open")
    # A later edit of the draft is not what this version's students read (finding 4).
    services.template_update(template=template, actor=instructor, manual="## Draft that is not published")
    student = StudentFactory()
    other = StudentFactory(username="classmate")
    for person in (student, other):
        services.enrollment_add(course=course, actor=instructor, student=person)
    client.force_login(student)
    response = client.get(reverse("courses:course-detail", args=[course.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    assert "vSphere 8 administration" in content
    assert "Step 1</h2>" in content and "<em>esxi-01</em>" in content
    assert "Draft that is not published" not in content
    assert "Your usage" in content
    assert instructor.get_full_name() in content
    assert "classmate" not in content
    assert "Roster" not in content
    assert "Set limits" not in content


def test_students_do_not_see_or_change_courses_they_are_not_in(client):
    instructor = InstructorFactory()
    course = make_course(instructor)
    client.force_login(StudentFactory())
    assert client.get(reverse("courses:course-detail", args=[course.pk])).status_code == 404
    for name in ("courses:course-state", "courses:roster-add", "courses:quota-edit", "courses:course-join-code"):
        assert client.post(reverse(name, args=[course.pk]), {"state": "open", "username": "x"}).status_code == 404
    course.refresh_from_db()
    assert course.state == "draft"


def test_an_enrolled_student_cannot_manage_their_course(client):
    instructor = InstructorFactory()
    course = published_course(instructor, state="open")
    student = StudentFactory()
    services.enrollment_add(course=course, actor=instructor, student=student)
    client.force_login(student)
    response = client.post(reverse("courses:course-state", args=[course.pk]), {"state": "closed"}, follow=True)
    assert any("Only this course's instructors" in text for text in messages_of(response))
    response = client.post(reverse("courses:roster-add", args=[course.pk]), {"username": "friend"}, follow=True)
    assert any("Only this course's instructors can change its roster." in text for text in messages_of(response))
    assert not User.objects.filter(username="friend").exists()
    course.refresh_from_db()
    assert course.state == "open"


def test_instructors_cannot_see_or_edit_another_instructors_course(client):
    course = make_course(InstructorFactory())
    client.force_login(InstructorFactory())
    assert client.get(reverse("courses:course-detail", args=[course.pk])).status_code == 404
    assert client.post(reverse("courses:course-edit", args=[course.pk]), {"title": "x"}).status_code == 404
    assert b"vSphere 8 administration" not in client.get(reverse("courses:course-list")).content


def test_student_joins_an_open_course_with_its_code(client):
    instructor = InstructorFactory()
    course = published_course(instructor, state="open")
    student = StudentFactory()
    client.force_login(student)
    home = client.get(reverse("home"))
    assert b"Join a course" in home.content

    wrong = client.post(reverse("courses:course-join"), {"code": "NOPE1234"})
    assert b"No course has that join code." in wrong.content

    response = client.post(reverse("courses:course-join"), {"code": course.join_code.lower()}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("courses:course-detail", args=[course.pk])
    assert Enrollment.objects.filter(course=course, student=student, source="join_code").exists()

    home = client.get(reverse("home")).content.decode()
    assert "vSphere 8 administration" in home
    assert reverse("courses:course-detail", args=[course.pk]) + "#manual" in home


def test_a_draft_course_cannot_be_joined(client):
    course = make_course(InstructorFactory())
    client.force_login(StudentFactory())
    response = client.post(reverse("courses:course-join"), {"code": course.join_code})
    assert b"is not open for enrollment" in response.content


def test_instructors_cannot_join_with_a_code(client):
    course = published_course(InstructorFactory(), state="open")
    client.force_login(InstructorFactory())
    response = client.post(reverse("courses:course-join"), {"code": course.join_code})
    assert b"Only student accounts can join courses with a code." in response.content


def test_instructor_home_lists_their_courses_and_templates(client):
    instructor = InstructorFactory()
    course = published_course(instructor)
    client.force_login(instructor)
    content = client.get(reverse("home")).content.decode()
    assert reverse("courses:course-detail", args=[course.pk]) in content
    assert reverse("courses:template-detail", args=[course.template_version.template_id]) in content
    assert "v1 published" in content


def test_admins_manage_every_course(client):
    course = make_course(InstructorFactory())
    client.force_login(AdminFactory())
    page = client.get(reverse("courses:course-detail", args=[course.pk]))
    assert page.status_code == 200
    assert page.context["can_manage"] and page.context["quota_form"] is not None


def test_a_course_without_limits_warns_who_runs_it_and_new_courses_take_the_admins_defaults(client):
    """Issue 10: a new course started with no limits and nobody was told."""
    from courses.models import QuotaDefaults

    instructor = InstructorFactory()
    course = published_course(instructor)
    client.force_login(instructor)
    page = client.get(reverse("courses:course-detail", args=[course.pk])).content.decode()
    assert "This course has no limits yet" in page and "Ask an admin to set them." in page

    QuotaDefaults(running_labs=20, lease_hours=4).save()
    second = make_course(instructor, version=course.template_version, code="vsp8-spring27")
    assert (second.quota.running_labs, second.quota.lease_hours, second.quota.idle_minutes) == (20, 4, None)
    page = client.get(reverse("courses:course-detail", args=[second.pk])).content.decode()
    assert "This course has no limits yet" not in page


def test_the_roster_add_follows_one_rule_on_the_page_as_in_the_api(client):
    """The page made an account from a user name alone; the API asked for details (issue 12):
    now both run courses.services.roster_add."""
    instructor = InstructorFactory()
    course = make_course(instructor)
    client.force_login(instructor)
    add = reverse("courses:roster-add", args=[course.pk])
    page = client.post(add, {"username": "typo"}).content.decode()
    assert "No account is called typo. Give an email or a name as well to create a student account." in page
    assert not User.objects.filter(username="typo").exists()
    StudentFactory(username="known")
    page = client.post(add, {"username": "known", "email": "other@example.edu"}).content.decode()
    assert "An account called known exists already: leave the other fields empty to enroll it." in page
    assert not course.enrollments.exists()
    client.post(add, {"username": "newbie", "email": "newbie@example.edu"})
    assert course.enrollments.get().student.username == "newbie"
