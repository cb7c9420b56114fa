"""Class sessions (courses.models.ClassSession) and their meetings (courses.selectors):
validation in words, weekly meetings expanded on the session's own wall clock across DST."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from courses import selectors, services
from courses.models import ClassSession
from tests.factories import StudentFactory, open_course

pytestmark = pytest.mark.django_db

UTC = datetime.UTC


def _instructor(course):
    return course.instructors.get()


def _weekly(course, **fields):
    values = {
        "repeat": ClassSession.Repeat.WEEKLY,
        "first_date": datetime.date(2026, 3, 2),
        "last_date": datetime.date(2026, 3, 20),
        "weekdays": [1],
        "start_time": datetime.time(9, 0),
        "duration_minutes": 90,
        "time_zone": "America/New_York",
    }
    return services.class_session_create(course=course, actor=_instructor(course), **{**values, **fields})


def test_a_weekly_nine_oclock_class_stays_nine_oclock_across_daylight_saving():
    course = open_course(students=0)
    session = _weekly(course)  # Mondays in March 2026; New York springs forward on Sunday 8 March
    meetings = selectors.session_occurrences(sessions=[session], after=datetime.datetime(2026, 3, 1, tzinfo=UTC))
    assert [meeting.local_start.strftime("%a %d %H:%M") for meeting in meetings] == [
        "Mon 02 09:00",
        "Mon 09 09:00",
        "Mon 16 09:00",
    ]
    # In UTC the start moves an hour: 14:00 under EST, 13:00 under EDT.
    assert [meeting.starts_at.astimezone(UTC).hour for meeting in meetings] == [14, 13, 13]
    assert meetings[1].ends_at - meetings[1].starts_at == datetime.timedelta(minutes=90)
    assert meetings[1].ready_at == meetings[1].starts_at - datetime.timedelta(minutes=10)


def test_the_autumn_change_keeps_the_wall_clock_too():
    course = open_course(students=0)
    session = _weekly(
        course,
        first_date=datetime.date(2026, 10, 19),
        last_date=datetime.date(2026, 11, 2),
        weekdays=[1, 3],
        time_zone="Europe/Paris",
    )
    meetings = selectors.session_occurrences(sessions=[session], after=datetime.datetime(2026, 10, 1, tzinfo=UTC))
    assert {meeting.local_start.strftime("%H:%M") for meeting in meetings} == {"09:00"}
    assert [m.local_start.strftime("%a %d") for m in meetings] == ["Mon 19", "Wed 21", "Mon 26", "Wed 28", "Mon 02"]
    # Paris falls back on Sunday 25 October: 07:00 UTC before, 08:00 UTC after.
    assert [m.starts_at.hour for m in meetings] == [7, 7, 8, 8, 8]


def test_a_start_inside_the_spring_forward_gap_is_an_hour_later_on_the_wall_clock():
    course = open_course(students=0)
    session = _weekly(
        course, first_date=datetime.date(2026, 3, 1), weekdays=[7], start_time=datetime.time(2, 30), duration_minutes=60
    )
    # Sunday 8 March 2026 in New York has no 02:30: clocks go from 02:00 to 03:00.
    [before, gap, after] = selectors.session_occurrences(
        sessions=[session], after=datetime.datetime(2026, 3, 1, tzinfo=UTC), limit=3
    )
    assert [m.local_start.strftime("%d %H:%M %Z") for m in (before, gap, after)] == [
        "01 02:30 EST",
        "08 03:30 EDT",
        "15 02:30 EDT",
    ]
    assert gap.ends_at - gap.starts_at == datetime.timedelta(minutes=60)


def test_meetings_merge_several_sessions_skip_the_past_and_keep_the_one_going_on():
    course = open_course(students=0)
    _weekly(course, weekdays=[1, 3], time_zone="UTC")
    services.class_session_create(
        course=course,
        actor=_instructor(course),
        title="Exam",
        first_date=datetime.date(2026, 3, 10),
        start_time=datetime.time(13, 0),
        duration_minutes=120,
        time_zone="UTC",
    )
    # Wednesday 4 March 09:30 UTC: that morning's class is going on.
    now = datetime.datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
    meetings = selectors.course_next_occurrences(course=course, now=now, limit=4)
    assert [(m.session.title, m.starts_at.strftime("%d %H:%M")) for m in meetings] == [
        ("", "04 09:00"),
        ("", "09 09:00"),
        ("Exam", "10 13:00"),
        ("", "11 09:00"),
    ]


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone", "not a time zone Nestlab knows"),
        ({"duration_minutes": 0}, "duration_minutes", "greater than or equal to 1"),
        ({"duration_minutes": 24 * 60 + 1}, "duration_minutes", "less than or equal to 1440"),
        ({"ready_minutes_before": 24 * 60 + 1}, "ready_minutes_before", "less than or equal to 1440"),
        ({"last_date": datetime.date(2026, 3, 1)}, "last_date", "last date is before the first"),
        ({"last_date": None}, "last_date", "needs its last date"),
        ({"weekdays": []}, "weekdays", "Pick the days it meets"),
        ({"weekdays": [0, 8]}, "weekdays", "Pick the days it meets"),
        ({"weekdays": [1, 1]}, "weekdays", "Pick the days it meets"),
    ],
)
def test_bad_sessions_are_refused_in_words(fields, field, words):
    course = open_course(students=0)
    with pytest.raises(ValidationError) as refused:
        _weekly(course, **fields)
    assert words in " ".join(refused.value.message_dict[field])
    assert not ClassSession.objects.exists()


def test_only_the_courses_instructors_change_its_sessions():
    course = open_course(students=1)
    student = course.enrollments.get().student
    with pytest.raises(PermissionDenied):
        services.class_session_create(
            course=course,
            actor=student,
            first_date=datetime.date(2026, 3, 10),
            start_time=datetime.time(9),
            duration_minutes=60,
            time_zone="UTC",
        )
    with pytest.raises(PermissionDenied):
        services.class_session_delete(session=_weekly(course), actor=StudentFactory())
