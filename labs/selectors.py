"""Reads shared by the pages, the API and the consumers."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from courses import permissions
from courses.models import VCenterEndpoint
from labs import vsphere
from labs.endpoints import endpoint_client
from labs.models import Operation
from portal import roles


def operation_list(*, user: AbstractBaseUser) -> QuerySet[Operation]:
    """Operations a user may see: admins all, everyone else their own."""
    operations = Operation.objects.select_related("endpoint", "actor")
    if roles.is_admin(user):
        return operations
    return operations.filter(actor=user)


def _require_picker(user: AbstractBaseUser) -> None:
    if not permissions.can_create_templates(user):
        raise PermissionDenied("Only instructors and admins can browse vCenter.")


def endpoint_inventory(
    *, endpoint: VCenterEndpoint, user: AbstractBaseUser, path: str | None = None, search: str = ""
) -> list[vsphere.InventoryItem]:
    """The picker: children of a folder (default: the datacenter's VM folder), or with
    ``search`` the VMs and templates whose name contains it, anywhere below that folder."""
    _require_picker(user)
    root = path or f"/{endpoint.datacenter}/vm"
    client = endpoint_client(endpoint)
    if search:
        return client.search_vms(root, search, recursive=True, limit=200)
    return client.list_children(root)


def endpoint_vm(*, endpoint: VCenterEndpoint, user: AbstractBaseUser, vm: str) -> vsphere.VMInfo:
    """Details of one VM for the picker (CPUs, memory, NICs, nested HV)."""
    _require_picker(user)
    return endpoint_client(endpoint).vm_info(vm)
