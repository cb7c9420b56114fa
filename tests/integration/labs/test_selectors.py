"""labs.selectors: the reads whose rule is written once and compiled for polls."""

from __future__ import annotations

import pytest

from courses import services as course_services
from labs import selectors
from labs.models import Operation
from tests.factories import AdminFactory, InstructorFactory, StudentFactory, open_course
from tests.integration.labs.api.conftest import ready_lab, student_of

pytestmark = pytest.mark.django_db


def test_operation_for_answers_each_person_as_operation_list_does():
    """The compiled poll query (one per kind of person) must let through exactly the people
    operation_list lets through: the student of the lab, the course's instructors and admins;
    for an operation on no lab, the person who started it."""
    course, other_course = open_course(students=2), open_course(students=1)
    teacher = course.instructors.first()
    former_teacher = InstructorFactory()
    course_services.course_instructor_add(course=course, actor=teacher, instructor=former_teacher)
    operations = [
        Operation.objects.filter(lab=ready_lab(course, 0)).latest("pk"),
        Operation.objects.filter(lab=ready_lab(course, 1)).latest("pk"),
        Operation.objects.filter(lab=ready_lab(other_course, 0)).latest("pk"),
    ]
    endpoint = course.template_version.template.endpoint
    operations.append(Operation.objects.create(kind=Operation.Kind.ENDPOINT_CHECK, actor=teacher, endpoint=endpoint))
    course_services.course_instructor_remove(course=course, actor=teacher, instructor=former_teacher)
    people = [
        student_of(course, 0),
        student_of(course, 1),
        student_of(other_course, 0),
        teacher,
        former_teacher,
        other_course.instructors.first(),
        AdminFactory(),
        StudentFactory(),  # enrolled nowhere
    ]
    seen = {}
    for person in people:
        for operation in operations:
            expected = selectors.operation_list(user=person).filter(pk=operation.pk).exists()
            found = selectors.operation_for(user=person, operation_id=operation.pk)
            assert (found is not None) == expected, (person.username, operation.pk)
            if found is not None:
                assert (found.pk, found.state, found.actor) == (operation.pk, operation.state, operation.actor)
            seen[(person.username, operation.pk)] = expected
    assert any(seen.values()) and not all(seen.values())
    assert selectors.operation_for(user=people[0], operation_id=operations[0].pk + 10_000) is None
