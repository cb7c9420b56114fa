"""The reconcile job (labs/jobs/reconcile.py) against a simulator of its own."""

from __future__ import annotations

import pytest

from labs import services
from labs.jobs import execute
from labs.models import Lab, Operation, Orphan
from labs.vsphere import PortGroupSpec
from portal import demo, simulator

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


@pytest.fixture
def sim():
    """A simulator per test, not the shared demo_vcsim: reconciling reads the whole inventory, and
    the labs an earlier test left there would be orphans to it."""
    server = simulator.start(args=["-demo"])
    yield server
    server.stop()


@pytest.fixture
def course(sim, monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)
    return demo.seed_demo(vcenter_url=sim.url, vcenter_user=sim.username, vcenter_password=sim.password)


def run(operation):
    execute(operation.pk)
    operation.refresh_from_db()
    return operation


@pytest.fixture
def lab(course):
    student = course.enrollments.get(student__username="student1").student
    operation = run(services.lab_start(course=course, student=student, actor=student))
    assert operation.state == Operation.State.SUCCEEDED, operation.error
    return operation.lab


def client_of(lab):
    from labs.endpoints import endpoint_client

    return endpoint_client(lab.endpoint)


def _stray_vm(client, name, lab_id):
    source = client.get("/DC0/vm/Nestlab Templates/Nested vSphere 8 Lab/router").moref
    vm = client.clone_vm(source, name=name, folder="/DC0/vm", pool="/DC0/host/DC0_C0/Resources")
    client.set_custom_values(vm, {"nestlab.lab_id": str(lab_id)})
    return vm


def reconcile(endpoint):
    operation = run(services.endpoint_reconcile_start(endpoint=endpoint, actor=None))
    assert operation.state == Operation.State.SUCCEEDED, operation.error
    return operation


def test_orphans_are_recorded_then_removed_after_the_grace_period(lab, settings):
    client = client_of(lab)
    stray = _stray_vm(client, "leftover-of-a-deleted-lab", 999999)
    client.ensure_port_group(
        datacenter="DC0",
        cluster="/DC0/host/DC0_C0",
        switch="vSwitch0",
        spec=PortGroupSpec(name="nestlab-lab999999-lab", vlan_id=2999),
    )

    settings.NESTLAB_ORPHAN_GRACE_MINUTES = 30
    first = reconcile(lab.endpoint)
    assert {o["name"] for o in first.result["orphans_seen"]} == {"leftover-of-a-deleted-lab", "nestlab-lab999999-lab"}
    assert first.result["removed"] == []
    assert client.find_vm("/DC0/vm", "leftover-of-a-deleted-lab") == stray, "kept during the grace period"
    assert "no lab has id 999999" in Orphan.objects.get(kind=Orphan.Kind.VM).reason

    settings.NESTLAB_ORPHAN_GRACE_MINUTES = 0
    second = reconcile(lab.endpoint)
    assert sorted(second.result["removed"]) == ["leftover-of-a-deleted-lab", "nestlab-lab999999-lab"]
    assert client.find_vm("/DC0/vm", "leftover-of-a-deleted-lab") is None
    removed = Orphan.objects.get(kind=Orphan.Kind.VM)
    assert removed.removed_at is not None and removed.removed_by == second


def test_the_lab_itself_is_not_an_orphan(lab, settings):
    settings.NESTLAB_ORPHAN_GRACE_MINUTES = 0
    operation = reconcile(lab.endpoint)
    assert operation.result["orphans_seen"] == [] and operation.result["removed"] == []
    assert lab.vms.exclude(moref="").count() == 5
    for vm in lab.vms.all():
        assert client_of(lab).power_state(vm.moref) == "poweredOn"


def test_a_lab_whose_vm_vanished_is_marked_broken_in_words(lab):
    esxi = lab.vms.get(role="esxi-02")
    client_of(lab).destroy_vm(esxi.moref)
    operation = reconcile(lab.endpoint)
    assert operation.result["broken_labs"] == [lab.name]
    lab.refresh_from_db()
    assert lab.state == Lab.State.ERROR
    assert lab.error == "esxi-02 disappeared from vCenter. Reset rebuilds the lab."


def test_a_lab_in_error_whose_vm_vanished_says_so_once_and_stops_metering(lab):
    """A lab left in error by a failed operation is checked too: its rows must not keep
    saying "poweredOn" for a VM vCenter no longer has, nor meter hours for it."""
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.ERROR, error="The revert stopped part way.")
    for vm in lab.vms.all():
        client_of(lab).destroy_vm(vm.moref)
    assert reconcile(lab.endpoint).result["broken_labs"] == [lab.name]
    lab.refresh_from_db()
    assert lab.state == Lab.State.ERROR and lab.error.endswith("disappeared from vCenter. Reset rebuilds the lab.")
    assert set(lab.vms.values_list("power_state", flat=True)) == {"missing"}
    assert lab.running_since is None, "no VM runs: hours stop"
    assert reconcile(lab.endpoint).result["broken_labs"] == [], "known missing VMs are not news"


def test_a_lab_with_an_operation_running_is_left_alone(lab, settings):
    settings.NESTLAB_ORPHAN_GRACE_MINUTES = 0
    busy = services.lab_snapshot_create(lab=lab, actor=lab.student, name="in flight")
    client_of(lab).destroy_vm(lab.vms.get(role="router").moref)
    operation = reconcile(lab.endpoint)
    assert operation.result["broken_labs"] == []
    lab.refresh_from_db()
    assert lab.state == Lab.State.READY
    assert busy.state == Operation.State.QUEUED


def test_only_admins_reconcile_on_demand_and_one_at_a_time(lab):
    from django.core.exceptions import PermissionDenied

    from core.errors import Conflict
    from tests.factories import AdminFactory

    with pytest.raises(PermissionDenied):
        services.endpoint_reconcile_start(endpoint=lab.endpoint, actor=lab.student)
    services.endpoint_reconcile_start(endpoint=lab.endpoint, actor=AdminFactory())
    with pytest.raises(Conflict, match="being reconciled already"):
        services.endpoint_reconcile_start(endpoint=lab.endpoint, actor=AdminFactory())


def test_a_vcenter_without_the_lab_attribute_changes_nothing(lab, sim):
    from pyVim.connect import Disconnect, SmartConnect

    si = SmartConnect(host=sim.host, port=sim.port, protocol="http", user=sim.username, pwd=sim.password)
    try:
        manager = si.RetrieveContent().customFieldsManager
        [field] = [f for f in manager.field if f.name == "nestlab.lab_id"]
        manager.RemoveCustomFieldDef(key=field.key)
    finally:
        Disconnect(si)
    operation = run(services.endpoint_reconcile_start(endpoint=lab.endpoint, actor=None))
    assert operation.state == Operation.State.FAILED
    assert "has no 'nestlab.lab_id' custom attribute" in operation.error and "nothing was changed" in operation.error
    lab.refresh_from_db()
    assert lab.state == Lab.State.READY
