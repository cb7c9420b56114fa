"""core.compiled: a queryset's SQL built once, run again with other values, answering what the
ORM answers (on SQLite and on PostgreSQL: the suite runs on both)."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from core.compiled import CompiledQuery
from tests.factories import InstructorFactory, StudentFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_instances_are_what_the_orm_gives_with_their_related_objects_and_no_further_query():
    tokens = {person.pk: Token.objects.create(user=person) for person in (StudentFactory(), InstructorFactory())}
    query = CompiledQuery(lambda key: Token.objects.select_related("user").filter(key=key), str)
    for token in tokens.values():
        with CaptureQueriesContext(connection) as captured:
            found = query.first(token.key)
            assert found.user.username == token.user.username  # select_related: no query of its own
        assert len(captured) == 1
        assert (found.key, found.user_id, found.created) == (token.key, token.user_id, token.created)
        assert found.user == token.user and found._state.adding is False
    assert query.first("no such key") is None


def test_rows_apply_django_converters():
    person = UserFactory()
    query = CompiledQuery(lambda user_id: User.objects.filter(pk=user_id).values_list("username", "date_joined"), int)
    assert query.rows(person.pk) == [(person.username, person.date_joined)]  # a datetime, on SQLite too
    assert query.rows(person.pk + 1000) == []


def test_the_sql_is_built_once_per_thread_and_serves_other_values():
    built = []

    def build(user_id: int):
        built.append(threading.current_thread().name)
        return Group.objects.filter(user__id=user_id).values_list("name")

    query = CompiledQuery(build, int)
    student, instructor = StudentFactory(), InstructorFactory()
    assert query.rows(student.pk) == [("Students",)]
    assert query.rows(instructor.pk) == [("Instructors",)]
    assert len(built) == 1
    other = threading.Thread(target=lambda: built.append(len(query._compiled("default").params)))
    other.start()
    other.join()
    assert len(built) == 3  # another thread builds its own (its own connection, its own compiler)


def test_a_value_the_query_does_not_use_is_allowed_and_an_empty_queryset_asks_nothing():
    person = UserFactory()
    unused = CompiledQuery(lambda user_id, pk: User.objects.filter(pk=pk), int, int)
    assert [found.pk for found in unused.instances(12345, person.pk)] == [person.pk]
    empty = CompiledQuery(lambda pk: User.objects.none(), int)
    with CaptureQueriesContext(connection) as captured:
        assert empty.instances(person.pk) == []
    assert len(captured) == 0


def test_a_value_changed_on_its_way_to_the_sql_is_refused():
    pattern = CompiledQuery(lambda name: User.objects.filter(username__contains=name), str)
    with pytest.raises(ValueError, match="other than as parameters of their own"):
        pattern.instances("ann")


def test_ids_no_row_can_have_answer_nothing_instead_of_an_overflow():
    UserFactory()
    query = CompiledQuery(lambda pk: User.objects.filter(pk=pk), int)
    assert query.instances(2**63) == []
    assert query.instances(-(2**63) - 1) == []


def test_wrong_number_of_values_and_unsupported_kinds_are_refused():
    query = CompiledQuery(lambda pk: User.objects.filter(pk=pk), int)
    with pytest.raises(TypeError, match="Expected 1 values, got 2"):
        query.instances(1, 2)
    with pytest.raises(ValueError, match="int and str"):
        CompiledQuery(lambda when: User.objects.filter(date_joined=when), float)
