"""The LMS's services against a real platform: the roster (Names and Role Provisioning) and
scores to its grade book (Assignment and Grade Services), with Nestlab's signed token requests."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from core.models import AuditEntry
from courses.models import Enrollment
from lti import services
from lti.models import CourseLink, Identity
from tests.factories import AdminFactory, InstructorFactory, StudentFactory, open_course
from tests.support.lti_platform import INSTRUCTOR, LEARNER

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def member(sub: str, *, status: str = "Active", roles=(LEARNER,)) -> dict:
    return {
        "user_id": sub,
        "name": sub.title(),
        "given_name": sub.title(),
        "family_name": "Student",
        "email": f"{sub}@school.example",
        "roles": list(roles),
        "status": status,
    }


@pytest.fixture
def link(registered, lti_platform):
    course = open_course(students=0)
    return CourseLink.objects.create(
        platform=registered,
        deployment_id=lti_platform.deployment_id,
        context_id="course-101",
        course=course,
        memberships_url=f"{lti_platform.issuer}/nrps/course-101/memberships",
        lineitems_url=f"{lti_platform.issuer}/ags/course-101/lineitems",
        ags_scopes=[
            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
            "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
            "https://purl.imsglobal.org/spec/lti-ags/scope/score",
        ],
    )


def _lms_enrolled(link) -> set[str]:
    return set(
        Identity.objects.filter(
            platform=link.platform,
            user__enrollments__course=link.course,
            user__enrollments__source=Enrollment.Source.LTI,
        ).values_list("subject", flat=True)
    )


def test_a_roster_sync_follows_the_lms_and_leaves_nestlabs_own_enrollments(link, lti_platform):
    teacher = link.course.instructors.get()
    by_hand = StudentFactory()
    Enrollment.objects.create(course=link.course, student=by_hand, source=Enrollment.Source.MANUAL)
    lti_platform.set_members(
        "course-101",
        [member("ann"), member("bob"), member("cid", status="Inactive"), member("tess", roles=[INSTRUCTOR])],
    )
    result = services.roster_sync(link=link, actor=teacher)
    assert (result.enrolled, result.removed, result.unchanged) == (2, 0, 0)
    assert _lms_enrolled(link) == {"ann", "bob"}
    lti_platform.set_members("course-101", [member("ann"), member("bob", status="Deleted")])
    result = services.roster_sync(link=link, actor=teacher)
    assert (result.enrolled, result.removed, result.unchanged) == (0, 1, 1)
    assert _lms_enrolled(link) == {"ann"}
    assert Enrollment.objects.filter(course=link.course, student=by_hand).exists()
    link.refresh_from_db()
    assert link.roster_sync_result == "0 enrolled, 1 removed, 1 unchanged." and link.roster_synced_at
    assert AuditEntry.objects.filter(action="lti.roster_sync", result="succeeded").count() == 2


def test_a_roster_sync_reads_every_page_of_the_lms_roster(link, lti_platform):
    lti_platform.set_members("course-101", [member(f"s{number}") for number in range(5)])
    lti_platform.set_page_size(2)
    assert services.roster_sync(link=link).enrolled == 5


def test_a_roster_sync_never_attaches_a_staff_account_by_its_email_and_says_so(link, lti_platform):
    InstructorFactory(email="ann@school.example")
    lti_platform.set_members("course-101", [member("ann"), member("bob")])
    result = services.roster_sync(link=link)
    assert (result.enrolled, result.skipped) == (1, 1)
    assert result.words() == "1 enrolled, 0 removed, 0 unchanged, 1 skipped (their e-mail is a staff account's)."
    assert not Identity.objects.filter(subject="ann").exists()


def test_two_lms_courses_linked_to_one_course_never_take_each_others_students_off(link, lti_platform):
    other_section = CourseLink.objects.create(
        platform=link.platform,
        deployment_id=link.deployment_id,
        context_id="course-102",
        course=link.course,
        memberships_url=f"{lti_platform.issuer}/nrps/course-102/memberships",
    )
    lti_platform.set_members("course-101", [member("ann")])
    lti_platform.set_members("course-102", [member("bob")])
    services.roster_sync(link=link)
    services.roster_sync(link=other_section)
    assert services.roster_sync(link=link).removed == 0
    assert _lms_enrolled(link) == {"ann", "bob"}
    lti_platform.set_members("course-102", [])
    assert services.roster_sync(link=other_section).removed == 1
    assert _lms_enrolled(link) == {"ann"}


def test_only_the_courses_instructors_sync_it(link):
    with pytest.raises(PermissionDenied):
        services.roster_sync(link=link, actor=InstructorFactory())


def test_a_refused_roster_request_is_told_in_words_and_recorded(link, lti_platform):
    link.memberships_url = f"{lti_platform.issuer}/nrps/no-such-course/memberships"
    link.save()
    lti_platform.set_tool_jwks({"keys": []})  # the LMS no longer trusts Nestlab's key
    with pytest.raises(ValidationError, match="refused or did not answer the roster request"):
        services.roster_sync(link=link, actor=AdminFactory())
    assert AuditEntry.objects.filter(action="lti.roster_sync", result="failed").exists()
    link.refresh_from_db()
    assert "refused or did not answer" in link.roster_sync_result


def test_the_schedule_syncs_every_linked_course_with_a_roster_service(link, lti_platform):
    lti_platform.set_members("course-101", [member("ann")])
    CourseLink.objects.create(
        platform=link.platform, deployment_id=link.deployment_id, context_id="course-no-nrps", course=link.course
    )
    assert services.roster_sync_all() == 1
    assert _lms_enrolled(link) == {"ann"}


def _student_from_lms(link, lti_platform, sub="ann"):
    lti_platform.set_members("course-101", [member(sub)])
    services.roster_sync(link=link)
    return Identity.objects.get(subject=sub).user


def test_a_score_goes_to_the_lms_grade_book_in_one_column(link, lti_platform):
    student = _student_from_lms(link, lti_platform)
    teacher = link.course.instructors.get()
    column = services.score_send(link=link, student=student, score_given=7, score_maximum=10, actor=teacher)
    services.score_send(link=link, student=student, score_given=9, score_maximum=10, comment="Well done", actor=teacher)
    (item,) = lti_platform.line_items()
    assert item["id"] == column and item["resourceId"] == f"nestlab-course-{link.course_id}"
    assert [(score["userId"], score["scoreGiven"], score["scoreMaximum"]) for score in lti_platform.scores()] == [
        ("ann", 7, 10),
        ("ann", 9, 10),
    ]
    assert lti_platform.scores()[1]["comment"] == "Well done"
    assert lti_platform.scores()[1]["gradingProgress"] == "FullyGraded"
    assert AuditEntry.objects.filter(action="lti.score_send").count() == 2


@pytest.mark.parametrize(
    ("given", "maximum", "words"),
    [(11, 10, "between 0 and its maximum"), (-1, 10, "between 0"), (0, 0, "maximum is above 0")],
)
def test_a_score_out_of_bounds_is_refused_in_words_and_nothing_is_sent(link, lti_platform, given, maximum, words):
    student = _student_from_lms(link, lti_platform)
    with pytest.raises(ValidationError, match=words):
        services.score_send(link=link, student=student, score_given=given, score_maximum=maximum)
    assert lti_platform.scores() == []


def test_a_score_for_someone_the_lms_does_not_know_is_refused(link, lti_platform):
    with pytest.raises(ValidationError, match="never opened Nestlab from Moodle"):
        services.score_send(link=link, student=StudentFactory(), score_given=1, score_maximum=1)


def test_a_score_the_lms_refuses_is_told_in_words(link, lti_platform):
    student = _student_from_lms(link, lti_platform)
    lti_platform.set_tool_jwks({"keys": []})
    with pytest.raises(ValidationError, match="refused or did not answer the score"):
        services.score_send(link=link, student=student, score_given=1, score_maximum=1)


# Launches with claims of unusual shapes (pylti1p3 checked the signature; the LMS is odd or hostile)


def _launch_data(lti_platform, **claims_over) -> dict:
    import time
    import uuid

    from lti import claims

    data = {
        "iss": lti_platform.issuer,
        "sub": "lms-odd",
        "nonce": uuid.uuid4().hex,
        "exp": int(time.time()) + 300,
        "email": "odd@school.example",
        claims.ROLES: [LEARNER],
        claims.DEPLOYMENT_ID: lti_platform.deployment_id,
        claims.CONTEXT: {"id": "course-101", "title": "Networking 101"},
    }
    data.update(claims_over)
    return data


@pytest.mark.parametrize(
    "odd",
    [
        {"https://purl.imsglobal.org/spec/lti/claim/context": {"id": "course-101", "title": 5}},
        {"https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": "not an object"},
        {
            "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
                "lineitems": "http://moodle/no-dots",
                "scope": "x",
            }
        },
        {"email": "not an e-mail"},
        {"email": ["odd@school.example"]},
        {"given_name": {"first": "Odd"}},
        {"exp": 10**12},
        {"exp": "soon"},
    ],
)
def test_a_launch_with_odd_claims_is_taken_without_them(link, lti_platform, odd):
    launched = services.launch_accept(platform=link.platform, data=_launch_data(lti_platform, **odd))
    assert launched.link == link and Enrollment.objects.filter(course=link.course, student=launched.user).exists()


@pytest.mark.parametrize(
    ("odd", "words"),
    [
        ({"sub": "x" * 256}, "user id longer than 255"),
        ({"sub": ["lms-odd"]}, "no user"),
        ({"https://purl.imsglobal.org/spec/lti/claim/context": {"id": "c" * 256}}, "course id longer than 255"),
    ],
)
def test_a_launch_whose_identifiers_cannot_be_kept_is_refused_in_words(link, lti_platform, odd, words):
    from core.models import AuditEntry

    with pytest.raises(services.LaunchRefused, match=words):
        services.launch_accept(platform=link.platform, data=_launch_data(lti_platform, **odd))
    assert not Identity.objects.exists()
    assert AuditEntry.objects.filter(action="auth.lti", result="refused").count() == 1
