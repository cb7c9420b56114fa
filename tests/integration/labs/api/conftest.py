"""Helpers for the labs API tests: signed-in clients and labs made ready without vCenter."""

from __future__ import annotations

from django.utils import timezone
from rest_framework.test import APIClient

from labs import services
from labs.models import Lab, Operation


def client_for(user=None) -> APIClient:
    """An API client signed in as ``user`` (anonymous without one)."""
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def student_of(course, index: int = 0):
    return course.enrollments.order_by("student__username")[index].student


def idle(lab: Lab) -> Lab:
    """Pretend every operation under way finished and the lab is ready and running
    (tests patch ``dispatch.send_operation``, so nothing runs them)."""
    Operation.objects.filter(state__in=Operation.ACTIVE_STATES).update(state=Operation.State.SUCCEEDED)
    Lab.objects.filter(pk=lab.pk).update(state=Lab.State.READY, running_since=timezone.now())
    lab.refresh_from_db()
    return lab


def ready_lab(course, index: int = 0) -> Lab:
    """The ``index``-th student's lab, started by them through the service, then made ready."""
    student = student_of(course, index)
    return idle(services.lab_start(course=course, student=student, actor=student).lab)
