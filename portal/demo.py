"""The demo class that `make run` seeds: accounts, the simulator's vCenter endpoint, a
published template of the demo nested-ESXi lab, and an open course with the demo
students enrolled and a quota set.

Idempotent: running it again updates what is there and creates what is missing. The
simulator forgets run-time objects when it restarts, so a published version whose
baseline snapshots are gone is published again and the demo course moved onto it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from core import roles
from core.validation import save_valid
from courses import guides
from courses import services as course_services
from courses.models import (
    Course,
    CourseQuota,
    GuideCheck,
    GuideVariable,
    LabTemplate,
    TemplateVersion,
    VCenterEndpoint,
)
from labs import jobs
from labs import services as lab_services
from labs.endpoints import endpoint_client
from portal import simulator

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    role: roles.Role
    first_name: str
    last_name: str


DEMO_ACCOUNTS = (
    DemoAccount("admin", "nestlab-admin", roles.Role.ADMIN, "Ada", "Admin"),
    DemoAccount("instructor", "nestlab-teach", roles.Role.INSTRUCTOR, "Ian", "Instructor"),
    DemoAccount("student1", "nestlab-learn", roles.Role.STUDENT, "Sam", "Student"),
    DemoAccount("student2", "nestlab-learn", roles.Role.STUDENT, "Sky", "Student"),
    DemoAccount("student3", "nestlab-learn", roles.Role.STUDENT, "Sol", "Student"),
)

DEMO_ENDPOINT_NAME = "Demo vCenter (simulator)"
DEMO_TEMPLATE_NAME = "Nested vSphere 8 Lab"
DEMO_SOURCE_FOLDER = "/DC0/vm/Nestlab Templates/Nested vSphere 8 Lab"
DEMO_COURSE_CODE = "vsp8-demo"
# role, nested HV required, boot order, NICs on the lab network
DEMO_VMS = (
    ("router", False, 1, 1),
    ("esxi-01", True, 2, 2),
    ("esxi-02", True, 2, 2),
    ("esxi-03", True, 2, 2),
    ("vcsa", False, 3, 1),
)
DEMO_QUOTA = {
    "running_labs": 10,
    "labs_per_student": 2,
    "snapshots_per_lab": 5,
    "vcpu_total": 300,
    "memory_gb_total": 1024,
    "storage_gb_total": 4000,
    "lab_hours_per_student": 40,
    "lifetime_days_after_end": 14,
}
DEMO_MANUAL = """\
# Nested vSphere 8 lab

Your lab is a private vSphere 8 environment: three nested **ESXi 8** hosts, a **vCenter
Server Appliance** and a **router** that joins them to the outside, on a network of
your own. Nothing you do here touches anyone else's lab.

| VM | role | address |
|---|---|---|
| router | gateway, DNS, NTP | 192.168.10.1 |
| esxi-01, esxi-02, esxi-03 | nested ESXi hosts | 192.168.10.11 to .13 |
| vcsa | vCenter Server | 192.168.10.20 |

## Exercise 1: build the cluster
1. Open the console of **vcsa** and log in to the vSphere Client.
2. Create a datacenter and a cluster; add the three hosts.
3. Take a lab snapshot called *cluster built* before you go on.

## Exercise 2: break it and get it back
Put **esxi-02** in maintenance mode and power it off from the portal, then revert the
whole lab to *cluster built*. Every VM goes back together.

> Stuck? **Reset** brings the lab back to how it was handed to you.
"""


def _accounts() -> dict[str, object]:
    User = get_user_model()
    people = {}
    for account in DEMO_ACCOUNTS:
        user, _ = User.objects.get_or_create(username=account.username)
        user.first_name = account.first_name
        user.last_name = account.last_name
        user.email = f"{account.username}@nestlab.example"
        user.is_staff = user.is_superuser = account.role == roles.Role.ADMIN
        user.set_password(account.password)
        user.save()
        roles.role_grant(user=user, role=account.role)
        people[account.username] = user
    return people


def _endpoint(
    *,
    vcenter_url: str,
    vcenter_user: str,
    vcenter_password: str,
    console_user: str = "",
    console_password: str = "",
) -> VCenterEndpoint:
    endpoint, _ = VCenterEndpoint.objects.get_or_create(
        name=DEMO_ENDPOINT_NAME, defaults={"url": vcenter_url, "username": vcenter_user}
    )
    endpoint.url = vcenter_url
    endpoint.username = vcenter_user
    endpoint.set_password(vcenter_password)
    endpoint.verify_tls = False
    endpoint.datacenter = "DC0"
    endpoint.compute_path = "/DC0/host/DC0_C0"
    endpoint.datastore = "LocalDS_0"
    endpoint.lab_switch = "vSwitch0"
    endpoint.vlan_min, endpoint.vlan_max = 2000, 2999
    endpoint.concurrency_limit = 8
    if console_user:
        endpoint.console_username = console_user
        endpoint.set_console_password(console_password)
    save_valid(endpoint)
    return endpoint


def _template(endpoint: VCenterEndpoint, instructor) -> LabTemplate:

    template = LabTemplate.objects.filter(name=DEMO_TEMPLATE_NAME, endpoint=endpoint).first()
    if template is None:
        template = course_services.template_create(
            actor=instructor,
            endpoint=endpoint,
            name=DEMO_TEMPLATE_NAME,
            description="Three nested ESXi 8 hosts, a vCenter appliance and a router on a private network.",
            manual=DEMO_MANUAL,
        )
    client = endpoint_client(endpoint)
    existing = {vm.role: vm for vm in template.vms.all()}
    for role, nested, boot_order, nics in DEMO_VMS:
        moref = client.get(f"{DEMO_SOURCE_FOLDER}/{role}").moref
        vm = existing.get(role)
        if vm is not None and vm.source_moref == moref:
            continue
        if vm is not None:
            course_services.template_vm_remove(vm=vm, actor=instructor)
        course_services.template_vm_add(
            template=template,
            actor=instructor,
            role=role,
            source_moref=moref,
            source_name=role,
            source_path=f"{DEMO_SOURCE_FOLDER}/{role}",
            boot_order=boot_order,
            nested_hv_required=nested,
            nic_networks=["lab"] * nics,
        )
    return template


# The demo's lab guide (issue 15): checks that pass and fail on the simulator. Its console runs
# the simulated guest's shell on Enter, so what a student types there is what the checks see.
DEMO_GUIDE_VARIABLES = ({"name": "lab_code", "kind": GuideVariable.Kind.STRING, "length": 6},)
DEMO_GUIDE_GUEST_VMS = ("router", "vcsa")
DEMO_GUIDE = (
    {
        "title": "Meet your lab",
        "body": (
            "Your lab is yours alone: three nested ESXi hosts, a vCenter appliance and a router on a network "
            "of your own.\n\nYour lab code is **{{ lab_code }}**; your classmates have other codes. "
            "Mark this step done when you have found the **Console** button of each VM."
        ),
        "points": 0,
        "checks": (),
    },
    {
        "title": "Sign your router",
        "body": (
            "Open the console of **router** and type, then press Enter:\n\n"
            "    echo {{ lab_code }} > /lab-code\n\n"
            "Then click **Check my work**: Nestlab reads the file inside the VM through VMware Tools, "
            "with no network path into your lab."
        ),
        "points": 10,
        "checks": (
            {
                "kind": GuideCheck.Kind.COMMAND,
                "label": "The router holds your lab code in /lab-code",
                "vm_role": "router",
                "command": 'grep "$NESTLAB_LAB_CODE" /lab-code',
                "timeout_seconds": 20,
            },
        ),
    },
    {
        "title": "Save your work",
        "body": "Take a lab snapshot called **cluster built** (the Snapshot button), so you can come back to it.",
        "points": 10,
        "checks": (
            {
                "kind": GuideCheck.Kind.VM_STATE,
                "label": "vcsa has a snapshot called “cluster built”",
                "vm_role": "vcsa",
                "vm_property": GuideCheck.VMProperty.SNAPSHOT_EXISTS,
                "expected": "cluster built",
            },
        ),
    },
    {
        "title": "Know your network",
        "body": "The lab manual lists the addresses of your lab's VMs.",
        "points": 5,
        "checks": (
            {
                "kind": GuideCheck.Kind.QUESTION,
                "label": "The router's address",
                "prompt": "Which address does the router have on your lab network?",
                "answer": "192.168.10.1",
            },
        ),
    },
)


def _guide(template: LabTemplate, instructor) -> None:
    """The demo guide and the guest accounts its checks use, when the template has no guide yet
    (an instructor's edits of the demo guide are kept)."""
    if template.guide_steps.exists():
        return
    for vm in template.vms.filter(role__in=DEMO_GUIDE_GUEST_VMS):
        course_services.template_vm_update(
            vm=vm,
            actor=instructor,
            guest_username=simulator.GUEST_USERNAME,
            guest_password=simulator.GUEST_PASSWORD,
        )
    for variable in DEMO_GUIDE_VARIABLES:
        if not template.guide_variables.filter(name=variable["name"]).exists():
            guides.guide_variable_add(template=template, actor=instructor, **variable)
    for item in DEMO_GUIDE:
        step = guides.guide_step_add(
            template=template, actor=instructor, title=item["title"], body=item["body"], points=item["points"]
        )
        for check in item["checks"]:
            guides.guide_check_add(step=step, actor=instructor, **check)
    template.refresh_from_db()


def _usable_version(template: LabTemplate) -> TemplateVersion | None:
    """The newest published version whose baseline snapshots still exist in vCenter."""

    version = template.versions.filter(state=TemplateVersion.State.PUBLISHED).order_by("-number").first()
    if version is None or version.revision != template.revision:
        return None
    client = endpoint_client(template.endpoint)
    for vm in version.spec["vms"]:
        if client.find_snapshot(vm["source_moref"], vm["baseline_snapshot"]) is None:
            return None
    return version


def _publish(template: LabTemplate, instructor) -> TemplateVersion:
    """Publish through the real operation machinery, in this process (no worker runs yet)."""

    # Unchanged is fine here: the simulator lost the last version's snapshots when it restarted.
    operation = lab_services.template_publish(template=template, actor=instructor, unchanged_again=True)
    # Run it here. If a worker is already running it may claim the operation first (the
    # claim is atomic, so only one of us runs it): then wait for the worker to finish it.
    jobs.execute(operation.pk)
    deadline = time.monotonic() + 300
    operation.refresh_from_db()
    while not operation.is_final and time.monotonic() < deadline:
        time.sleep(0.2)
        operation.refresh_from_db()
    if operation.state != operation.State.SUCCEEDED:
        raise RuntimeError(f"Publishing the demo template failed: {operation.error}")
    return TemplateVersion.objects.get(pk=operation.template_version_id)


def _course(version: TemplateVersion, instructor, admin, students) -> Course:
    today = timezone.localdate()
    course = Course.objects.filter(code=DEMO_COURSE_CODE).first()
    if course is None:
        course = course_services.course_create(
            actor=instructor,
            title="vSphere 8: Install, Configure, Manage (demo)",
            code=DEMO_COURSE_CODE,
            starts_on=today - timedelta(days=7),
            ends_on=today + timedelta(days=60),
            template_version=version,
            description="A demo class on the simulator. Start your lab, break it, revert it.",
        )
    course_services.course_update(course=course, actor=instructor, template_version=version, state=Course.State.OPEN)
    for student in students:
        course_services.enrollment_add(course=course, actor=instructor, student=student)
    quota, _ = CourseQuota.objects.get_or_create(course=course)
    if quota.running_labs is None:
        course_services.quota_update(course=course, actor=admin, **DEMO_QUOTA)
    course.refresh_from_db()
    return course


def seed_demo(
    *,
    vcenter_url: str,
    vcenter_user: str,
    vcenter_password: str,
    console_user: str = simulator.CONSOLE_USERNAME,
    console_password: str = simulator.CONSOLE_PASSWORD,
) -> Course:
    with transaction.atomic():
        people = _accounts()
        endpoint = _endpoint(
            vcenter_url=vcenter_url,
            vcenter_user=vcenter_user,
            vcenter_password=vcenter_password,
            console_user=console_user,
            console_password=console_password,
        )
        template = _template(endpoint, people["instructor"])
        _guide(template, people["instructor"])
    version = _usable_version(template)
    if version is None:
        logger.info("Publishing the demo template %s", template.name)
        version = _publish(template, people["instructor"])
    students = [people[account.username] for account in DEMO_ACCOUNTS if account.role == roles.Role.STUDENT]
    with transaction.atomic():
        return _course(version, people["instructor"], people["admin"], students)
