"""The demo class that `make run` seeds: accounts and the simulator's vCenter endpoint.

Idempotent: running it again updates what is there and creates what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from courses.models import VCenterEndpoint
from portal import roles


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


@transaction.atomic
def seed_demo(*, vcenter_url: str, vcenter_user: str, vcenter_password: str) -> VCenterEndpoint:
    User = get_user_model()
    for account in DEMO_ACCOUNTS:
        user, _ = User.objects.get_or_create(username=account.username)
        user.first_name = account.first_name
        user.last_name = account.last_name
        user.email = f"{account.username}@nestlab.example"
        user.is_staff = user.is_superuser = account.role == roles.Role.ADMIN
        user.set_password(account.password)
        user.save()
        roles.role_grant(user=user, role=account.role)

    endpoint, _ = VCenterEndpoint.objects.get_or_create(
        name=DEMO_ENDPOINT_NAME,
        defaults={"url": vcenter_url, "username": vcenter_user},
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
    endpoint.full_clean()
    endpoint.save()
    return endpoint
