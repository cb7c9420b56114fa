"""core/audit.py on the database: the write service and its transactions, the selector, the
retention prune, the CSV export's keyset chunks, and the pages' refusal hooks (the views'
``refusal_answered`` and ``AuditMiddleware``)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, connection, transaction
from django.urls import include, path, reverse
from django.utils import timezone

from core import audit
from core.models import AuditEntry, Notice
from core.tasks import prune_audit_log
from courses import services as course_services
from courses.models import Course
from labs import services as lab_services
from labs.models import Lab
from portal.celery import app
from tests.factories import AdminFactory, StudentFactory, open_course
from tests.integration.labs.api.conftest import ready_lab

pytestmark = pytest.mark.django_db


def _entry(**fields) -> AuditEntry:
    values = {
        "category": AuditEntry.Category.OPERATION,
        "action": "lab.snapshot",
        "result": AuditEntry.Result.SUCCEEDED,
        "source": AuditEntry.Source.WORKER,
        **fields,
    }
    return AuditEntry.objects.create(**values)


def _refusals() -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(category=AuditEntry.Category.REFUSAL).order_by("id"))


# Writing


def test_an_entry_keeps_the_actors_name_and_survives_the_account():
    student = StudentFactory(username="leaver")
    entry = audit.audit_record(
        category=AuditEntry.Category.OPERATION,
        action="lab.reset",
        result=AuditEntry.Result.ACCEPTED,
        actor=student,
        target=audit.Target(text="lab x (#1)", type="lab", id="1"),
        detail="Reset lab #1 is queued.",
    )
    assert (entry.actor, entry.actor_username, entry.source, entry.remote_addr) == (student, "leaver", "system", None)
    student.delete()
    entry.refresh_from_db()
    assert (entry.actor, entry.actor_username, entry.target) == (None, "leaver", "lab x (#1)")


def test_a_request_gives_the_source_and_the_address(rf):
    api = rf.get("/api/v1/labs/", REMOTE_ADDR="10.0.0.7")
    page = rf.get("/labs/1/", REMOTE_ADDR="2001:db8::1")
    common = {"category": "refusal", "action": "x", "result": "refused"}
    assert audit.audit_record(**common, request=api).source == "api"
    entry = audit.audit_record(**common, request=page)
    assert (entry.source, entry.remote_addr) == ("page", "2001:db8::1")
    with audit.request_bound(api):  # what AuditMiddleware does for code deeper down
        assert audit.audit_record(**common).remote_addr == "10.0.0.7"


def test_long_words_are_cut_to_fit_rather_than_lost():
    entry = audit.audit_record(
        category="refusal", action="a" * 100, result="refused", target=audit.Target(text="t" * 400), detail="d" * 5000
    )
    entry.refresh_from_db()
    assert (len(entry.action), len(entry.target), len(entry.detail)) == (64, 255, audit.DETAIL_MAX)
    assert entry.target.endswith("…")


def test_a_bad_entry_is_logged_and_never_raises(caplog):
    assert audit.audit_record(category="nonsense", action="x", result="refused") is None
    assert "Could not write an audit entry" in caplog.text
    assert not AuditEntry.objects.exists()


def test_a_failed_write_does_not_spoil_the_callers_transaction(monkeypatch, caplog):
    """On PostgreSQL a failed statement aborts the whole transaction; the savepoint keeps the
    caller's work (and its later statements) alive."""
    user = StudentFactory()

    def broken_save(self, *args, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO no_such_table VALUES (1)")

    monkeypatch.setattr(AuditEntry, "save", broken_save)
    with transaction.atomic():
        Notice.objects.create(user=user, text="before")
        assert audit.audit_record(category="refusal", action="x", result="refused", actor=user) is None
        Notice.objects.create(user=user, text="after")
    assert sorted(Notice.objects.values_list("text", flat=True)) == ["after", "before"]
    assert "no_such_table" in caplog.text


def test_an_entry_written_in_a_transaction_that_rolls_back_is_gone():
    with pytest.raises(DatabaseError), transaction.atomic():
        audit.audit_record(category="operation", action="lab.reset", result="accepted")
        raise DatabaseError("the action failed after its entry")
    assert not AuditEntry.objects.exists()


# Reading


def test_the_selector_filters_by_person_category_result_and_text_newest_first():
    now = timezone.now()
    old = _entry(actor_username="alice", category="login", action="auth.login", when=now - timedelta(hours=2))
    refused = _entry(
        actor_username="alice",
        category="refusal",
        action="labs:lab-reset",
        result="refused",
        target="lab vsp8-alice-1 (#4)",
        detail="This is not your lab.",
        when=now - timedelta(hours=1),
    )
    other = _entry(actor_username="bob", detail="Take snapshot #9 (name Before upgrade) succeeded", when=now)

    assert list(audit.audit_entry_list()) == [other, refused, old]
    assert list(audit.audit_entry_list(person="alice")) == [refused, old]
    assert list(audit.audit_entry_list(person="ALICE")) == [], "user names are exact, as Django's are"
    assert list(audit.audit_entry_list(category="refusal")) == [refused]
    assert list(audit.audit_entry_list(result="succeeded")) == [other, old]
    assert list(audit.audit_entry_list(text="NOT YOUR")) == [refused], "detail, any case"
    assert list(audit.audit_entry_list(text="vsp8-alice")) == [refused], "target"
    assert list(audit.audit_entry_list(text="lab-reset")) == [refused], "action"
    assert list(audit.audit_entry_list(text="upgrade", person="bob")) == [other]


def test_dates_are_whole_days_in_the_portals_time_zone(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    timezone.deactivate()
    berlin = timezone.get_current_timezone()
    first = _entry(when=datetime(2026, 11, 10, 0, 30, tzinfo=berlin))  # still the 9th in UTC
    last = _entry(when=datetime(2026, 11, 11, 23, 59, tzinfo=berlin))
    _entry(when=datetime(2026, 11, 12, 0, 1, tzinfo=berlin))
    _entry(when=datetime(2026, 11, 9, 23, 59, tzinfo=berlin))
    assert list(audit.audit_entry_list(date_from=date(2026, 11, 10), date_to=date(2026, 11, 11))) == [last, first]


def test_old_entries_are_pruned_after_the_retention(settings):
    settings.AUDIT_RETENTION_DAYS = 30
    now = timezone.now()
    _entry(when=now - timedelta(days=31))
    kept = _entry(when=now - timedelta(days=29))
    assert prune_audit_log() == 1
    assert list(AuditEntry.objects.all()) == [kept]
    settings.AUDIT_RETENTION_DAYS = 0
    _entry(when=now - timedelta(days=3000))
    assert audit.audit_prune() == 0, "0 keeps every entry"


def test_celery_beat_prunes_every_hour(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["prune-audit-log"]
    assert entry["task"] == prune_audit_log.name
    assert entry["task"] in app.tasks
    assert entry["schedule"] == 3600.0


@pytest.mark.parametrize("reader", ["sync", "async"])
def test_the_export_reads_keyset_chunks_and_loses_no_row_with_equal_times(monkeypatch, reader):
    monkeypatch.setattr(audit, "EXPORT_CHUNK", 2)
    when = timezone.now()
    entries = [_entry(when=when, detail=f"row {n}") for n in range(5)] + [_entry(when=when - timedelta(seconds=1))]
    queryset = audit.audit_entry_list()
    if reader == "sync":
        parts = list(audit._lines(queryset))
    else:

        async def collect():
            return [part async for part in audit._async_lines(queryset)]

        parts = async_to_sync(collect)()
    assert len(parts) == 1 + 3, "the header, then three chunks of two"
    ids = [int(line.split(",", 1)[0]) for line in "".join(parts[1:]).splitlines()]
    assert ids == [entry.pk for entry in sorted(entries, key=lambda e: (e.when, e.pk), reverse=True)]


# Refusals on pages


def raises_permission_denied(request):
    raise PermissionDenied("Nobody may open this.")


urlpatterns = [path("forbidden-by-exception/", raises_permission_denied), path("", include("portal.urls"))]


@pytest.mark.urls(__name__)
def test_a_permission_denied_no_view_caught_is_recorded_once(client):
    student = StudentFactory()
    client.force_login(student)
    response = client.get("/forbidden-by-exception/", REMOTE_ADDR="10.2.3.4")
    assert response.status_code == 403
    [entry] = _refusals()
    assert (entry.actor, entry.result, entry.source, entry.remote_addr) == (student, "refused", "page", "10.2.3.4")
    assert entry.detail == "Nobody may open this. (GET /forbidden-by-exception/)"


def test_a_quota_refusal_shown_as_a_message_is_recorded_with_its_lab(client, monkeypatch):
    monkeypatch.setattr(lab_services.dispatch, "send_operation", lambda *args, **kwargs: None)
    course = open_course(quota={"snapshots_per_lab": 0})
    lab = ready_lab(course)
    client.force_login(lab.student)
    response = client.post(reverse("labs:lab-snapshot-create", args=[lab.pk]), {"name": "before"}, follow=True)
    assert "No snapshot was taken." in response.content.decode()
    [entry] = _refusals()
    assert entry.actor == lab.student
    assert entry.action == "labs:lab-snapshot-create"
    assert (entry.target, entry.target_type, entry.target_id) == (f"lab {lab.name} (#{lab.pk})", "lab", str(lab.pk))
    assert "the limit is 0" in entry.detail or "none are allowed" in entry.detail
    assert entry.detail.endswith(f"(POST /labs/{lab.pk}/snapshots/)")


def test_a_refusal_on_a_403_page_is_recorded_with_its_reason(client):
    student = StudentFactory()
    client.force_login(student)
    assert client.get(reverse("accounts:people")).status_code == 403
    [entry] = _refusals()
    assert (entry.action, entry.actor) == ("accounts:people", student)
    assert entry.detail == "Only admins can see everyone's accounts. (GET /people/)"


def test_a_services_refusal_caught_by_a_courses_page_is_recorded(client):
    course = open_course(students=1)
    student = course.enrollments.get().student
    client.force_login(student)
    client.post(reverse("courses:course-state", args=[course.pk]), {"state": Course.State.CLOSED})
    [entry] = _refusals()
    assert entry.target == f"course {course} (#{course.pk})"
    assert entry.detail.startswith("Only this course's instructors can change it.")


def test_any_other_403_is_recorded_once_in_general_words(client):
    client.force_login(StudentFactory())
    assert client.post(reverse("courses:markdown-preview"), {"text": "# hi"}).status_code == 403
    [entry] = _refusals()
    assert entry.detail == "Answered 'forbidden' (403). (POST /templates/preview/)"


def test_not_found_for_someone_elses_lab_is_a_refusal_and_for_no_lab_is_not(client, monkeypatch):
    monkeypatch.setattr(lab_services.dispatch, "send_operation", lambda *args, **kwargs: None)
    course = open_course(students=2)
    lab = ready_lab(course, 0)
    classmate = course.enrollments.exclude(student=lab.student).get().student
    client.force_login(classmate)
    assert client.get(reverse("labs:lab-detail", args=[lab.pk])).status_code == 404
    assert client.get(reverse("labs:lab-detail", args=[lab.pk + 1000])).status_code == 404
    [entry] = _refusals()
    assert (entry.actor, entry.target_id) == (classmate, str(lab.pk))
    assert "which exists: it is not theirs to see" in entry.detail


def test_people_who_are_not_signed_in_are_asked_to_sign_in_not_refused(client):
    assert client.get(reverse("accounts:people")).status_code == 302
    assert client.get(reverse("audit")).status_code == 302
    assert not AuditEntry.objects.exists()


def test_a_class_action_records_each_refused_lab_with_that_lab(client, monkeypatch):
    monkeypatch.setattr(lab_services.dispatch, "send_operation", lambda *args, **kwargs: None)
    course = open_course(students=2)
    labs = [ready_lab(course, 0), ready_lab(course, 1)]
    Lab.objects.filter(pk__in=[lab.pk for lab in labs]).update(running_since=None)  # a reset would start them
    course_services.quota_update(course=course, actor=AdminFactory(), running_labs=0)
    client.force_login(course.instructors.get())
    client.post(
        reverse("labs:class-action", args=[course.pk]),
        {"action": "reset", "lab": [lab.pk for lab in labs], "confirmed": "1"},
    )
    assert [(entry.target_id, entry.action) for entry in _refusals()] == [
        (str(lab.pk), "lab.bulk.reset") for lab in sorted(labs, key=lambda lab: lab.name)
    ]
