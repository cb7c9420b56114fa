"""Faults, end to end: real Celery worker processes (killed with SIGKILL and started
again), the real watcher process, and a simulator of each test's own (restarted, or
told to fail or hang a vCenter task). After each fault the operation must end (never
hang), say why in words, and leave vCenter and the database agreeing: no orphan VMs,
folders, pools or port groups, checked in vCenter itself through the driver.

These scenarios cross the runner, the reaper, the build steps, the capacity semaphore
and the watcher, so they live together here rather than next to one module: one file
is the fault set to run (about a minute and a half), and each test names the modules it
exercises. docs/architecture.md ("Faults and recovery") says what the product does on
each fault.
"""

from __future__ import annotations

import time

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from courses import services as course_services
from labs import services
from labs.endpoints import endpoint_client
from labs.jobs.lab_build import LABS_FOLDER
from labs.models import Lab, LabSnapshot, Operation
from portal import demo, simulator
from tests.support.processes import WatcherProcess, WorkerProcess, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]

# Small enough that a dead worker is noticed in seconds, large enough that a busy machine
# (2 cores shared by several test runs) never takes a live one for dead.
HEARTBEAT_TIMEOUT = 8
# Generous: the machine may be shared with other test runs; each scenario ends far sooner.
OPERATION_TIMEOUT = 90
WORKERS: list[WorkerProcess] = []  # this test's workers, for the words of a timeout


@pytest.fixture
def sim():
    server = simulator.start(args=["-demo"])
    yield server
    server.stop()


@pytest.fixture
def start_worker(transactional_db, celery_queue, settings):
    """Start Celery worker processes on this session's queue, with settings of the test's own."""
    from portal.celery import app

    settings.CELERY_TASK_DEFAULT_QUEUE = celery_queue
    settings.NESTLAB_OPERATION_HEARTBEAT_TIMEOUT = HEARTBEAT_TIMEOUT
    app.conf.task_default_queue = celery_queue
    WORKERS.clear()

    def start(**env: object) -> WorkerProcess:
        extra = {"NESTLAB_OPERATION_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT)}
        extra.update({name: str(value) for name, value in env.items()})
        worker = WorkerProcess(queue=celery_queue, extra_env=extra)
        WORKERS.append(worker)
        return worker.start()

    yield start
    for worker in WORKERS:
        worker.stop()
    WORKERS.clear()


@pytest.fixture
def course(sim):
    return demo.seed_demo(vcenter_url=sim.url, vcenter_user=sim.username, vcenter_password=sim.password)


@pytest.fixture
def si(sim):
    service = SmartConnect(host=sim.host, port=sim.port, protocol="http", user=sim.username, pwd=sim.password)
    yield service
    Disconnect(service)


def student(course, name="student1"):
    return course.enrollments.get(student__username=name).student


def user(username: str):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=username)


def final(operation: Operation, *, timeout: float = OPERATION_TIMEOUT) -> Operation:
    """The operation once it reached a final state; fails the test after ``timeout``,
    saying where the operation was and what the workers last logged."""

    def ended():
        operation.refresh_from_db()
        return operation.is_final

    try:
        wait_for(ended, timeout=timeout, interval=0.2, message=f"operation #{operation.pk} ({operation.kind}) to end")
    except AssertionError as timed_out:
        logs = "\n".join(line for worker in WORKERS for line in worker.output[-30:])
        raise AssertionError(
            f"{timed_out}: it is {operation.state} at {operation.progress}% ({operation.step!r}), "
            f"attempts {operation.attempts}; the workers' last lines:\n{logs}"
        ) from None
    return operation


def ready_lab(course, name="student1") -> Lab:
    person = student(course, name)
    operation = final(services.lab_start(course=course, student=person, actor=person))
    assert operation.state == Operation.State.SUCCEEDED, operation.error
    lab = operation.lab
    lab.refresh_from_db()
    assert lab.state == Lab.State.READY
    return lab


def in_vcenter(lab: Lab) -> dict[str, list[str]]:
    """What of ``lab`` exists in vCenter, looked up by name (not through the database's morefs)."""
    client = endpoint_client(lab.endpoint)
    datacenter = lab.endpoint.datacenter
    folder = client.find(f"/{datacenter}/vm/{LABS_FOLDER}/{lab.course.code}/{lab.name}")
    pool = client.find(f"{lab.endpoint.compute_path}/Resources/{lab.name}")
    return {
        "vms": sorted(vm.name for vm in client.search_vms(f"/{datacenter}/vm", lab.name)),
        "folders": [folder.path] if folder else [],
        "pools": [pool.path] if pool else [],
        "port_groups": sorted(
            network.name
            for network in client.list_networks(f"/{datacenter}")
            if network.name.startswith(f"nestlab-lab{lab.pk}-")
        ),
    }


def nestlab_vms(endpoint) -> dict[str, tuple[str, str]]:
    """Every VM in vCenter that carries Nestlab's lab id: {moref: (name, lab id)}."""
    return endpoint_client(endpoint).attribute_values("nestlab.lab_id", under=f"/{endpoint.datacenter}/vm") or {}


def task_states(si) -> dict[str, str]:
    """{task moref: state} of vCenter's recent tasks, read by path (the simulator puts a
    snapshot in a snapshot task's ``info.entity``, which pyVmomi cannot read)."""
    PC = vmodl.query.PropertyCollector
    tasks = si.content.taskManager.recentTask or []
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=task) for task in tasks],
        propSet=[PC.PropertySpec(type=vim.Task, pathSet=["info.state"])],
    )
    return {item.obj._moId: str(item.propSet[0].val) for item in si.content.propertyCollector.RetrieveContents([spec])}


def reconcile(endpoint) -> dict:
    """An admin's Reconcile, run by the worker; returns what it found."""
    operation = final(services.endpoint_reconcile_start(endpoint=endpoint, actor=user("admin")))
    assert operation.state == Operation.State.SUCCEEDED, operation.error
    return operation.result


@pytest.mark.timeout(240)
def test_a_worker_killed_mid_provision_is_replaced_and_the_lab_ends_built(sim, course, start_worker):
    """SIGKILL while clones run: a new worker resumes the operation (labs/reaper.py, the
    runner's claim, idempotent build steps, capacity slots of the dead run) within 2 minutes."""
    endpoint = course.template_version.template.endpoint
    endpoint.concurrency_limit = 2  # two clones at a time: some made, some not yet, at the kill
    endpoint.save(update_fields=["concurrency_limit"])
    sim.configure(task_durations={"CloneVM_Task": 3})
    worker = start_worker()
    person = student(course)
    operation = services.lab_start(course=course, student=person, actor=person)
    lab = operation.lab

    def cloning_under_way():
        operation.refresh_from_db()
        return operation.step.startswith(("Cloning", "Waiting for vCenter capacity")) and in_vcenter(lab)["vms"]

    wait_for(cloning_under_way, timeout=60, interval=0.1, message="the first clones")
    worker.kill()
    killed_at = time.monotonic()
    made_before = in_vcenter(lab)["vms"]
    assert 0 < len(made_before) < 5, made_before

    start_worker()
    final(operation, timeout=120)
    recovered_in = time.monotonic() - killed_at
    print(f"\nworker killed with {len(made_before)} of 5 VMs cloned; operation ended {recovered_in:.1f} s later")
    assert recovered_in < 120
    assert operation.state == Operation.State.SUCCEEDED, operation.error
    assert operation.attempts == 2, "run once, killed, resumed once"
    lab.refresh_from_db()
    assert lab.state == Lab.State.READY, lab.error

    # vCenter holds exactly the lab: each VM once, no second copy of one the dead run made.
    found = in_vcenter(lab)
    assert found["vms"] == sorted(vm.name for vm in lab.vms.all())
    assert len(found["folders"]) == 1 and len(found["pools"]) == 1
    assert found["port_groups"] == sorted(lab.networks.values_list("port_group", flat=True))
    assert set(nestlab_vms(endpoint)) == set(lab.vms.values_list("moref", flat=True))
    result = reconcile(endpoint)
    assert result["orphans_seen"] == [] and result["broken_labs"] == []


@pytest.mark.timeout(240)
def test_vcenter_restarting_mid_operation_and_under_the_watcher(sim, course, start_worker):
    """The simulator restarts while a snapshot runs and the watcher watches: the operation
    fails in words, the watcher reconnects, and the lab says what vCenter now holds (the
    simulator forgets run-time objects on restart, so the lab is broken); Reset rebuilds
    it and the watcher follows the new VMs (labs/watcher.py, labs/vsphere/watch.py,
    labs/vsphere/connection.py, labs/jobs/lab_ops.py)."""
    # Full clones: after the restart the template's VMs are back, its snapshots are not.
    template = course.template_version.template
    course_services.template_update(template=template, actor=user("instructor"), linked_clones=False)
    course = demo.seed_demo(vcenter_url=sim.url, vcenter_user=sim.username, vcenter_password=sim.password)
    assert course.template_version.spec["linked_clones"] is False
    start_worker()
    watcher = WatcherProcess().start()
    try:
        lab = ready_lab(course)
        sim.configure(task_durations={"CreateSnapshot_Task": 3})
        operation = services.lab_snapshot_create(lab=lab, actor=lab.student, name="before the restart")
        wait_for(
            lambda: Operation.objects.filter(pk=operation.pk, step__startswith="Taking snapshot").exists(),
            timeout=60,
            message="the snapshot step",
        )
        time.sleep(0.5)
        restarted_at = time.monotonic()
        sim.restart()

        operation = final(operation)
        ended_in = time.monotonic() - restarted_at
        print(f"\nsnapshot operation ended {ended_in:.1f} s after the restart: {operation.error}")
        assert operation.state == Operation.State.FAILED
        assert operation.error and "vCenter" in operation.error, operation.error

        def broken():
            lab.refresh_from_db()
            return lab.state == Lab.State.ERROR and "disappeared from vCenter" in lab.error

        wait_for(broken, timeout=60, message="the lab to be marked broken")
        assert set(lab.vms.values_list("power_state", flat=True)) == {"missing"}
        assert not LabSnapshot.objects.filter(lab=lab, name="before the restart").exists()
        wait_for(
            lambda: any("connected again" in line for line in watcher.output),
            timeout=60,
            message="the watcher to reconnect",
        )
        settled_in = time.monotonic() - restarted_at
        print(f"lab marked broken and watcher back {settled_in:.1f} s after the restart")

        reset = final(services.lab_reset(lab=lab, actor=lab.student))
        assert reset.state == Operation.State.SUCCEEDED, reset.error
        lab.refresh_from_db()
        assert lab.state == Lab.State.READY
        assert set(lab.vms.values_list("power_state", flat=True)) == {"poweredOn"}

        # Behind the portal's back, in the restarted vCenter: the watcher follows.
        router = lab.vms.get(role="router")
        session = SmartConnect(host=sim.host, port=sim.port, protocol="http", user=sim.username, pwd=sim.password)
        try:
            vim.VirtualMachine(router.moref, session._stub).PowerOffVM_Task()
            wait_for(
                lambda: lab.vms.filter(role="router", power_state="poweredOff").exists(),
                timeout=15,
                message="the watcher to see the router powered off",
            )
        finally:
            Disconnect(session)
    finally:
        watcher.stop()


@pytest.mark.timeout(240)
def test_a_clone_failing_half_way_leaves_nothing_behind(sim, course, start_worker):
    """One of five clones fails after showing progress while the others finish: the
    operation fails in words and the undo removes every VM, the folder, pool and port
    groups (labs/jobs/lab_build.py tear_down, ProvisionLab.on_failure)."""
    start_worker()
    sim.configure(task_durations={"CloneVM_Task": 1.5}, fail=["CloneVM_Task:esxi-03"])
    person = student(course)
    operation = final(services.lab_start(course=course, student=person, actor=person))
    assert operation.state == Operation.State.FAILED
    assert "esxi-03" in operation.error and "injected failure" in operation.error, operation.error
    lab = operation.lab
    lab.refresh_from_db()
    assert lab.state == Lab.State.ERROR and lab.error.startswith("Provisioning failed:"), lab.error
    assert in_vcenter(lab) == {"vms": [], "folders": [], "pools": [], "port_groups": []}
    assert nestlab_vms(lab.endpoint) == {}
    assert reconcile(lab.endpoint)["orphans_seen"] == []


@pytest.mark.timeout(240)
def test_a_vcenter_task_that_never_ends_hits_the_deadline(sim, course, start_worker, si):
    """A snapshot task that hangs on one VM: the driver's deadline fires, the task is
    cancelled, the snapshots already taken on the other VMs are removed, and the lab is
    usable again (labs/vsphere/tasks.py, SnapshotLab.on_failure)."""
    start_worker(NESTLAB_VSPHERE_TASK_DEADLINE=3)
    lab = ready_lab(course)
    router = lab.vms.get(role="router")
    sim.configure(hang=[f"CreateSnapshot_Task:{router.moref}<"])
    started = time.monotonic()
    operation = final(services.lab_snapshot_create(lab=lab, actor=lab.student, name="stuck"))
    took = time.monotonic() - started
    print(f"\nthe hanging snapshot failed after {took:.1f} s: {operation.error}")
    assert operation.state == Operation.State.FAILED
    assert "within 3 s" in operation.error and "cancelled" in operation.error, operation.error
    assert took < 30, "the deadline fired, not some later time-out"
    lab.refresh_from_db()
    assert lab.state == Lab.State.READY, lab.error

    client = endpoint_client(lab.endpoint)
    for vm in lab.vms.all():
        names = [snapshot.name for snapshot in client.list_snapshots(vm.moref)]
        assert names == ["Baseline"], f"{vm.role} keeps {names}"
    states = task_states(si)
    assert states and not [task for task, state in states.items() if state in ("running", "queued")], states
    assert not LabSnapshot.objects.filter(lab=lab, name="stuck").exists()

    sim.configure(hang=[])
    again = final(services.lab_snapshot_create(lab=lab, actor=lab.student, name="stuck"))
    assert again.state == Operation.State.SUCCEEDED, again.error
    assert reconcile(lab.endpoint)["orphans_seen"] == []
