"""labs/dispatch.py: which queue an operation is sent to, by the plan its service made."""

import pytest
from django.contrib.auth import get_user_model

from labs import capacity, dispatch, services
from labs.models import Lab, LabSnapshot, Operation
from tests.factories import AdminFactory, EndpointFactory, open_course
from tests.integration.labs.api.conftest import ready_lab

pytestmark = pytest.mark.integration


@pytest.fixture
def sent_to(monkeypatch, settings):
    """The queues the messages went to (the broker is not asked)."""
    settings.CELERY_TASK_DEFAULT_QUEUE = "nestlab"
    queues = []

    def send_task(name, **kwargs):
        assert name == "labs.run_operation"
        queues.append(kwargs["queue"])

    monkeypatch.setattr(dispatch.current_app, "send_task", send_task)
    return queues


@pytest.mark.django_db
def test_builds_and_quick_operations_go_to_queues_of_their_own(sent_to):
    endpoint, admin = EndpointFactory(), AdminFactory()
    for kind in (Operation.Kind.PROVISION, Operation.Kind.POWER, Operation.Kind.PUBLISH, Operation.Kind.SNAPSHOT):
        operation = Operation.objects.create(kind=kind, endpoint=endpoint, actor=admin)
        dispatch.send_operation(operation.pk)
    assert sent_to == ["nestlab-build", "nestlab", "nestlab-build", "nestlab"]


@pytest.mark.django_db
def test_guide_checks_have_a_queue_of_their_own_so_a_class_checked_at_once_keeps_no_power_on_waiting(sent_to):
    endpoint, admin = EndpointFactory(), AdminFactory()
    for kind in (Operation.Kind.CHECK, Operation.Kind.POWER, Operation.Kind.CHECK):
        operation = Operation.objects.create(kind=kind, endpoint=endpoint, actor=admin)
        dispatch.send_operation(operation.pk)
    assert sent_to == ["nestlab-checks", "nestlab", "nestlab-checks"]


@pytest.mark.django_db
def test_a_reset_planned_as_a_revert_is_quick_and_one_that_rebuilds_goes_to_the_builders(
    sent_to, django_capture_on_commit_callbacks
):
    """The service decides revert-or-rebuild once; the queue follows what it stored."""
    course = open_course(students=3)
    with_baseline, without_baseline, broken = ready_lab(course, 0), ready_lab(course, 1), ready_lab(course, 2)
    for lab in (with_baseline, broken):
        LabSnapshot.objects.create(lab=lab, name="Baseline", is_baseline=True)
    Lab.objects.filter(pk=broken.pk).update(state=Lab.State.ERROR, error="esxi-02 disappeared from vCenter.")
    sent_to.clear()
    plans = []
    for lab in (with_baseline, without_baseline, broken):
        lab.refresh_from_db()
        with django_capture_on_commit_callbacks(execute=True):
            operation = services.lab_reset(lab=lab, actor=lab.student)
        plans.append(operation.params[dispatch.RESET_REVERTS])
    assert plans == [True, False, False]
    assert sent_to == ["nestlab", "nestlab-build", "nestlab-build"]


# Builds wait their turn in their endpoint's line (labs.capacity), holding no worker: end to
# end, with a real Celery worker process, the real Redis and a simulator of the test's own.


@pytest.fixture
def demo_course(demo_vcsim, transactional_db):
    from portal import demo

    course = demo.seed_demo(
        vcenter_url=demo_vcsim.url, vcenter_user=demo_vcsim.username, vcenter_password=demo_vcsim.password
    )
    endpoint = course.template_version.template.endpoint
    endpoint.concurrency_limit = 2
    endpoint.save(update_fields=["concurrency_limit"])
    # Another test of this run may have used the same endpoint id (the database rolls back,
    # Redis does not): this endpoint's line starts empty.
    connection = capacity._redis()
    connection.delete(
        *capacity._keys(endpoint.pk), *capacity._build_keys(endpoint.pk), f"{capacity._base(endpoint.pk)}:told"
    )
    return course


@pytest.fixture
def one_worker(transactional_db, celery_queue, settings):
    """One Celery worker process, concurrency 1, on both queues: a single builder."""
    from portal.celery import app
    from tests.support.processes import WorkerProcess

    settings.CELERY_TASK_DEFAULT_QUEUE = celery_queue
    app.conf.task_default_queue = celery_queue
    worker = WorkerProcess(queue=celery_queue, concurrency=1).start()
    yield worker
    worker.stop()


def _student(course, name):
    return course.enrollments.get(student__username=name).student


def _says(operation, words, timeout=30):
    """Wait until the operation's step shows ``words`` (the live push carries the same)."""
    from tests.support.processes import wait_for

    def said():
        operation.refresh_from_db()
        return operation.step_label == words

    try:
        wait_for(said, timeout=timeout, interval=0.1, message=f"operation #{operation.pk} to say {words!r}")
    except AssertionError:
        raise AssertionError(f"operation #{operation.pk} says {operation.step_label!r}, not {words!r}") from None


def _final(operation, timeout=120):
    from tests.support.processes import wait_for

    def ended():
        operation.refresh_from_db()
        return operation.is_final

    wait_for(ended, timeout=timeout, interval=0.2, message=f"operation #{operation.pk} to end")
    return operation


@pytest.mark.timeout(300)
def test_builds_waiting_for_capacity_hold_no_worker_and_go_when_slots_free(demo_course, one_worker):
    from contextlib import ExitStack

    course = demo_course
    endpoint = course.template_version.template.endpoint
    admin = get_user_model().objects.get(username="admin")
    with ExitStack() as held:
        # The endpoint's two clone slots are taken (another worker's clones, say).
        for _ in range(2):
            held.enter_context(capacity.vcenter_slot(endpoint_id=endpoint.pk, limit=2))
        first, second = (
            services.lab_start(course=course, student=_student(course, name), actor=_student(course, name))
            for name in ("student1", "student2")
        )
        assert capacity.build_line(endpoint.pk) == [first.pk, second.pk]
        # Each says its place and why, written by a quick worker within a second.
        # Not the vCenter's name: a student watches their build's step (docs/security.md, fourth round).
        _says(first, "Waiting for vCenter capacity: yours is next (at most 2 clones at once on this vCenter).")
        _says(
            second, "Waiting for vCenter capacity: 1 build ahead of yours (at most 2 clones at once on this vCenter)."
        )

        # The one worker process is free: a publish (a build-queue operation that clones
        # nothing) and an endpoint check run to success while both builds wait.
        template = course.template_version.template
        publish = services.template_publish(template=template, actor=admin, unchanged_again=True)
        check = services.endpoint_check_start(endpoint=endpoint, actor=admin)
        assert _final(publish).state == Operation.State.SUCCEEDED, publish.error
        assert _final(check).state == Operation.State.SUCCEEDED, check.error
        for waiting in (first, second):
            waiting.refresh_from_db()
            assert waiting.state == Operation.State.QUEUED and waiting.attempts == 0

    # The slots are given back: the release admits the first build; the second is next.
    assert _final(first).state == Operation.State.SUCCEEDED, first.error
    assert _final(second).state == Operation.State.SUCCEEDED, second.error
    assert capacity.build_line(endpoint.pk) == []
    assert capacity.in_use(endpoint.pk) == (0, 0)


@pytest.mark.timeout(120)
def test_a_build_cancelled_while_waiting_leaves_the_line_and_the_next_moves_up(demo_course, one_worker):
    from contextlib import ExitStack

    course = demo_course
    endpoint = course.template_version.template.endpoint
    with ExitStack() as held:
        for _ in range(2):
            held.enter_context(capacity.vcenter_slot(endpoint_id=endpoint.pk, limit=2))
        first, second = (
            services.lab_start(course=course, student=_student(course, name), actor=_student(course, name))
            for name in ("student1", "student2")
        )
        services.operation_cancel(operation=first, actor=first.actor)
        first.refresh_from_db()
        assert first.state == Operation.State.CANCELLED
        assert Lab.objects.get(pk=first.lab_id).state == Lab.State.DELETED  # nothing was built for it
        assert capacity.build_line(endpoint.pk) == [second.pk]
        _says(second, "Waiting for vCenter capacity: yours is next (at most 2 clones at once on this vCenter).")
    assert _final(second).state == Operation.State.SUCCEEDED, second.error
