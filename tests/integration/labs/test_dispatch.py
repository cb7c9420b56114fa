"""labs/dispatch.py: which queue an operation is sent to, by the plan its service made."""

import pytest

from labs import dispatch, services
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
