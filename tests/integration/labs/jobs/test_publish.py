"""The publish job (labs/jobs/publish.py) against a simulator of its own, run in-process."""

import pytest

from courses import services as course_services
from courses.models import TemplateVersion
from labs import services
from labs.jobs import execute
from labs.jobs.publish import baseline_snapshot_name
from labs.models import Operation
from portal import simulator
from tests.factories import InstructorFactory, simulator_endpoint

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]
LAB_FOLDER = "/DC0/vm/Nestlab Templates/Nested vSphere 8 Lab"


@pytest.fixture(scope="module")
def sim():
    """Publishing leaves snapshots on the source VMs: this module gets a simulator of its own."""
    server = simulator.start(args=["-demo"])
    yield server
    server.stop()


@pytest.fixture
def client(sim, db):
    from labs.endpoints import endpoint_client

    return endpoint_client(simulator_endpoint(sim))


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)


def _moref(client, path):
    return client.get(path).moref


def _template(sim, client, owner, vms):
    template = course_services.template_create(
        actor=owner, endpoint=simulator_endpoint(sim, name=f"sim-{owner.pk}"), name="Nested vSphere 8"
    )
    for role, path, nested in vms:
        course_services.template_vm_add(
            template=template,
            actor=owner,
            role=role,
            source_moref=_moref(client, path),
            source_name=path.rsplit("/", 1)[-1],
            nested_hv_required=nested,
            nic_networks=["lab"],
        )
    return template


def _publish(template, owner) -> Operation:
    operation = services.template_publish(template=template, actor=owner)
    execute(operation.pk)
    operation.refresh_from_db()
    if operation.template_version is not None:  # a failed publish leaves no version
        operation.template_version.refresh_from_db()
    return operation


def _attempted(operation) -> TemplateVersion:
    """The version a failed publish tried to make (it is gone; its number and template remain)."""
    return TemplateVersion(template_id=operation.params["template"], number=operation.params["version"])


def test_publish_snapshots_every_vm_and_records_sizes(sim, client):
    owner = InstructorFactory()
    template = _template(
        sim,
        client,
        owner,
        [("esxi-01", f"{LAB_FOLDER}/esxi-01", True), ("router", f"{LAB_FOLDER}/router", False)],
    )
    course_services.template_vm_update(vm=template.vms.get(role="router"), actor=owner, memory_mb_override=2048)
    operation = _publish(template, owner)
    version = operation.template_version

    assert operation.state == Operation.State.SUCCEEDED, operation.error
    assert version.state == TemplateVersion.State.PUBLISHED
    assert (version.vcpu_total, version.memory_mb_total) == (4 + 1, 16384 + 2048)
    by_role = {vm["role"]: vm for vm in version.spec["vms"]}
    for role in ("esxi-01", "router"):
        source = by_role[role]["source_moref"]
        snapshot = client.find_snapshot(source, baseline_snapshot_name(version))
        assert snapshot is not None, f"{role} has its baseline snapshot in vCenter"
        assert by_role[role]["baseline_snapshot"] == snapshot.moref
    assert by_role["esxi-01"]["guest_nested_hv"] is True


def test_a_vanished_vm_fails_the_publish_naming_it(sim, client):
    owner = InstructorFactory()
    template = _template(sim, client, owner, [("esxi-02", f"{LAB_FOLDER}/esxi-02", True)])
    course_services.template_vm_add(
        template=template, actor=owner, role="gone", source_moref="vm-999999", source_name="old-esxi",
        nic_networks=["lab"],
    )  # fmt: skip
    operation = _publish(template, owner)
    assert operation.state == Operation.State.FAILED
    assert "gone (old-esxi) is no longer in vCenter" in operation.error
    assert operation.result["problems"] == [
        "gone (old-esxi) is no longer in vCenter; pick it again or remove it from the template."
    ]
    assert operation.template_version is None and not template.versions.exists(), "a failed publish leaves none"
    name = baseline_snapshot_name(_attempted(operation))
    assert client.find_snapshot(_moref(client, f"{LAB_FOLDER}/esxi-02"), name) is None, "checked before snapshots"


def test_a_powered_on_vm_and_missing_nested_hv_are_explained(sim, client):
    owner = InstructorFactory()
    template = _template(
        sim,
        client,
        owner,
        [("running", "/DC0/vm/DC0_H0_VM0", False), ("vcsa", f"{LAB_FOLDER}/vcsa", True)],
    )
    operation = _publish(template, owner)
    assert operation.state == Operation.State.FAILED
    assert "running (DC0_H0_VM0) is powered on; power it off" in operation.error
    assert "vcsa (vcsa) needs nested hardware virtualization" in operation.error


def test_a_failure_after_some_snapshots_removes_them(sim, client):
    owner = InstructorFactory()
    template = _template(
        sim,
        client,
        owner,
        [("esxi-03", f"{LAB_FOLDER}/esxi-03", True), ("vcsa", f"{LAB_FOLDER}/vcsa", False)],
    )
    vcsa = _moref(client, f"{LAB_FOLDER}/vcsa")
    with sim.rules(fail=[f"CreateSnapshot_Task:{vcsa}"]):
        operation = _publish(template, owner)
    assert operation.state == Operation.State.FAILED
    assert "injected failure" in operation.error
    esxi = _moref(client, f"{LAB_FOLDER}/esxi-03")
    name = baseline_snapshot_name(_attempted(operation))
    assert client.find_snapshot(esxi, name) is None, "the snapshot taken before the failure is gone"


def test_a_retried_publish_finds_the_snapshot_it_already_took(sim, client):
    owner = InstructorFactory()
    template = _template(sim, client, owner, [("router", f"{LAB_FOLDER}/router", False)])
    operation = _publish(template, owner)
    assert operation.state == Operation.State.SUCCEEDED, operation.error
    router = _moref(client, f"{LAB_FOLDER}/router")
    before = [s.moref for root in client.list_snapshots(router) for s in root.walk()]

    # The worker died after the snapshot: the same version runs again from the start.
    Operation.objects.filter(pk=operation.pk).update(state=Operation.State.QUEUED, result={})
    TemplateVersion.objects.filter(pk=operation.template_version_id).update(state=TemplateVersion.State.PUBLISHING)
    execute(operation.pk)
    operation.refresh_from_db()
    after = [s.moref for root in client.list_snapshots(router) for s in root.walk()]
    assert operation.state == Operation.State.SUCCEEDED
    assert after == before, "no second baseline snapshot"


# Several vCenters (issue 13): the template's VMs copied to each, a baseline on each.


@pytest.fixture(scope="module")
def second_sim():
    """A second vCenter with the same demo inventory (as a school's copy of its templates)."""
    server = simulator.start(args=["-demo"])
    yield server
    server.stop()


def test_publish_takes_a_baseline_on_each_extra_endpoint_and_one_failing_stops_no_other(sim, client, second_sim):
    from courses.models import VersionBaseline
    from labs.endpoints import endpoint_client

    owner = InstructorFactory()
    template = _template(sim, client, owner, [("esxi-02", f"{LAB_FOLDER}/esxi-02", True)])
    second = simulator_endpoint(second_sim, name=f"second-{owner.pk}")
    dead = simulator_endpoint(second_sim, name=f"dead-{owner.pk}", url=f"https://127.0.0.1:{simulator.free_port()}/sdk")
    course_services.template_update(template=template, actor=owner, extra_endpoints=[second, dead])

    operation = _publish(template, owner)

    assert operation.state == Operation.State.SUCCEEDED, operation.error
    version = operation.template_version
    assert version.ready_endpoint_ids() == sorted([template.endpoint_id, second.pk]), "the version serves the two"
    failed = version.baselines.get(endpoint=dead)
    assert failed.state == VersionBaseline.State.FAILED
    assert failed.error.startswith(f"Not published to {dead.name}: "), failed.error
    assert operation.result["endpoint_problems"] == [failed.error]
    on_second = version.baselines.get(endpoint=second).vms["esxi-02"]
    second_client = endpoint_client(second)
    assert on_second["moref"] == second_client.get(f"{LAB_FOLDER}/esxi-02").moref
    snapshot = second_client.find_snapshot(on_second["moref"], baseline_snapshot_name(version))
    assert snapshot is not None and snapshot.moref == on_second["snapshot"]


def test_an_extra_endpoints_copy_that_differs_is_refused_in_words_and_left_untouched(sim, client, second_sim):
    from courses.models import VersionBaseline
    from labs.endpoints import endpoint_client

    owner = InstructorFactory()
    template = _template(sim, client, owner, [("router", f"{LAB_FOLDER}/router", False)])
    second = simulator_endpoint(second_sim, name=f"second-{owner.pk}")
    second_client = endpoint_client(second)
    router = second_client.get(f"{LAB_FOLDER}/router").moref
    cpus = client.vm_info(client.get(f"{LAB_FOLDER}/router").moref).num_cpu
    second_client.reconfigure_vm(router, num_cpus=cpus + 1)
    course_services.template_update(template=template, actor=owner, extra_endpoints=[second])
    try:
        operation = _publish(template, owner)
    finally:
        second_client.reconfigure_vm(router, num_cpus=cpus)

    assert operation.state == Operation.State.SUCCEEDED, operation.error
    baseline = operation.template_version.baselines.get(endpoint=second)
    assert baseline.state == VersionBaseline.State.FAILED
    assert f"router ({LAB_FOLDER}/router) has {cpus + 1} CPUs, the template's VM {cpus}" in baseline.error
    assert second_client.find_snapshot(router, baseline_snapshot_name(operation.template_version)) is None
