"""courses/api/views.py: courses, joining, join codes, quotas, usage and top-ups."""

import pytest

from courses import usage
from courses.models import Course, CourseQuota, QuotaTopUp
from tests.factories import AdminFactory, InstructorFactory, StudentFactory
from tests.integration.courses.api.conftest import client_for, make_course, make_published_version

pytestmark = pytest.mark.django_db

URL = "/api/v1/courses/"

NEW = {"title": "vSphere 8 administration", "code": "vsp8-fall26", "starts_on": "2026-09-01", "ends_on": "2026-12-15"}


def _enroll(course, student=None):
    student = student or StudentFactory()
    course.enrollments.create(student=student)
    return student


def test_an_instructor_creates_a_draft_course_they_teach():
    instructor = InstructorFactory()
    response = client_for(instructor).post(URL, {**NEW, "state": "open"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["instructors"] == [instructor.username]
    assert body["state"] == "draft", "a new course is a draft whatever the request says"
    assert body["student_count"] == 0 and body["template_version"] is None
    assert len(body["join_code"]) == 8
    assert CourseQuota.objects.filter(course_id=body["id"]).exists()


def test_a_course_pins_a_published_version_only():
    instructor = InstructorFactory()
    version = make_published_version(instructor)
    response = client_for(instructor).post(URL, {**NEW, "template_version": version.pk}, format="json")
    assert response.status_code == 201
    assert response.json()["template_name"] == version.template.name

    publishing = make_published_version(instructor)
    publishing.state = "publishing"
    publishing.save()
    response = client_for(instructor).post(
        URL, {**NEW, "code": "other", "template_version": publishing.pk}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"template_version": ["Only a published template version can be used."]}


def test_bad_course_input_is_named():
    make_course(InstructorFactory())
    response = client_for(InstructorFactory()).post(
        URL, {**NEW, "ends_on": "2026-08-01", "code": "vsp8-fall26"}, format="json"
    )
    assert response.status_code == 400
    assert "code" in response.json()["errors"]
    response = client_for(InstructorFactory()).post(URL, {**NEW, "code": "new", "ends_on": "2026-08-01"}, format="json")
    assert response.json()["errors"] == {"ends_on": ["The course ends before it starts."]}


def test_students_cannot_create_courses():
    response = client_for(StudentFactory()).post(URL, NEW, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == "Only instructors and admins can create courses."
    assert client_for().post(URL, NEW, format="json").status_code == 403
    assert not Course.objects.exists()


def test_everyone_lists_the_courses_they_may_see():
    teacher, other_teacher = InstructorFactory(), InstructorFactory()
    mine = make_course(teacher, code="mine")
    theirs = make_course(other_teacher, code="theirs")
    student = _enroll(mine)

    def ids(user):
        return sorted(row["id"] for row in client_for(user).get(URL).json()["results"])

    assert ids(AdminFactory()) == sorted([mine.pk, theirs.pk])
    assert ids(teacher) == [mine.pk]
    assert ids(student) == [mine.pk]
    assert ids(StudentFactory()) == []
    assert client_for().get(URL).status_code == 403


def test_a_student_reads_their_course_without_its_join_code_and_not_others():
    teacher = InstructorFactory()
    mine, other = make_course(teacher, code="mine"), make_course(teacher, code="other")
    student = _enroll(mine)
    client = client_for(student)

    response = client.get(f"{URL}{mine.pk}/")
    assert response.status_code == 200
    assert response.json()["student_count"] == 1 and response.json()["join_code"] is None
    assert client.get(f"{URL}{other.pk}/").status_code == 404
    assert client_for(teacher).get(f"{URL}{mine.pk}/").json()["join_code"] == mine.join_code


def test_a_student_reading_their_course_is_not_told_its_vcenters():
    """The vCenters' names (an admin's label, often the host) are for its staff: the course page
    never showed them to students, the API did (``endpoints_in_use``, issue 13)."""
    teacher = InstructorFactory()
    version = make_published_version(teacher)
    course = make_course(teacher, open_with=version)
    endpoint = version.template.endpoint
    student = _enroll(course)

    for body in (
        client_for(student).get(f"{URL}{course.pk}/").json(),
        client_for(student).get(URL).json()["results"][0],
    ):
        assert body["endpoints_in_use"] is None
        assert endpoint.name not in str(body)
    shown = client_for(teacher).get(f"{URL}{course.pk}/").json()
    assert shown["endpoints_in_use"] == [endpoint.name]


def test_instructors_edit_their_own_courses_only():
    teacher = InstructorFactory()
    course = make_course(teacher)
    response = client_for(teacher).patch(f"{URL}{course.pk}/", {"title": "vSphere 8: install"}, format="json")
    assert response.status_code == 200 and response.json()["title"] == "vSphere 8: install"

    other = client_for(InstructorFactory())
    assert other.get(f"{URL}{course.pk}/").status_code == 404
    assert other.patch(f"{URL}{course.pk}/", {"title": "Hijacked"}, format="json").status_code == 404
    student = _enroll(course)
    refused = client_for(student).patch(f"{URL}{course.pk}/", {"title": "Mine"}, format="json")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "Only this course's instructors can change it."
    assert (
        client_for(AdminFactory()).patch(f"{URL}{course.pk}/", {"title": "By admin"}, format="json").status_code == 200
    )
    course.refresh_from_db()
    assert course.title == "By admin"


def test_opening_a_course_needs_a_published_version():
    teacher = InstructorFactory()
    course = make_course(teacher)
    client = client_for(teacher)
    refused = client.patch(f"{URL}{course.pk}/", {"state": "open"}, format="json")
    assert refused.status_code == 400
    assert refused.json()["errors"] == {"template_version": ["A course needs a published template version to open."]}

    version = make_published_version(teacher)
    response = client.put(f"{URL}{course.pk}/", {**NEW, "template_version": version.pk, "state": "open"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["state"] == "open"


# Joining with a code


def test_a_student_joins_an_open_course_with_its_code():
    teacher = InstructorFactory()
    course = make_course(teacher, open_with=make_published_version(teacher))
    student = StudentFactory()
    response = client_for(student).post(f"{URL}join/", {"code": course.join_code.lower()}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["id"] == course.pk
    assert course.enrollments.get().student == student
    assert course.enrollments.get().source == "join_code"


def test_a_wrong_code_or_a_closed_course_is_refused_in_words():
    teacher = InstructorFactory()
    draft = make_course(teacher)
    student = client_for(StudentFactory())
    wrong = student.post(f"{URL}join/", {"code": "NOPE1234"}, format="json")
    assert wrong.status_code == 400
    assert wrong.json()["errors"] == {"code": ["No course has that join code. Check it with your instructor."]}
    closed = student.post(f"{URL}join/", {"code": draft.join_code}, format="json")
    assert closed.status_code == 400
    assert "not open for enrollment" in closed.json()["detail"]
    assert student.post(f"{URL}join/", {}, format="json").json()["errors"] == {"code": ["This field is required."]}
    staff = client_for(teacher).post(f"{URL}join/", {"code": draft.join_code}, format="json")
    assert staff.status_code == 403


def test_instructors_rotate_and_disable_the_join_code():
    teacher = InstructorFactory()
    course = make_course(teacher)
    old = course.join_code
    client = client_for(teacher)

    rotated = client.post(f"{URL}{course.pk}/join-code/", {}, format="json")
    assert rotated.status_code == 200
    assert rotated.json()["join_code"] not in (None, old)
    disabled = client.post(f"{URL}{course.pk}/join-code/", {"enabled": False}, format="json")
    assert disabled.json() == {"join_code": None}
    course.refresh_from_db()
    assert course.join_code is None

    student = _enroll(course)
    assert client_for(student).post(f"{URL}{course.pk}/join-code/", {}, format="json").status_code == 403
    assert client_for(InstructorFactory()).post(f"{URL}{course.pk}/join-code/", {}, format="json").status_code == 404


# Quotas and usage


LIMITS = {
    "running_labs": 10,
    "labs_per_student": 2,
    "snapshots_per_lab": 5,
    "vcpu_total": 200,
    "memory_gb_total": 512,
    "storage_gb_total": 2000,
    "lab_hours_per_student": 40,
    "lifetime_days_after_end": 0,
    "lease_hours": 4,
    "lease_extensions": 1,
    "idle_minutes": None,
    "pool_labs": 4,
}


def test_anyone_who_sees_the_course_reads_its_quota():
    teacher = InstructorFactory()
    course = make_course(teacher)
    student = _enroll(course)
    for user in (teacher, student, AdminFactory()):
        response = client_for(user).get(f"{URL}{course.pk}/quota/")
        assert response.status_code == 200
        assert response.json()["running_labs"] is None
    assert client_for(StudentFactory()).get(f"{URL}{course.pk}/quota/").status_code == 404
    assert client_for(InstructorFactory()).get(f"{URL}{course.pk}/quota/").status_code == 404


def test_admins_set_quotas_null_is_no_limit_and_zero_is_none():
    admin = AdminFactory()
    course = make_course(InstructorFactory())
    client = client_for(admin)

    response = client.put(f"{URL}{course.pk}/quota/", LIMITS, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["updated_by"] == admin.username
    assert {name: response.json()[name] for name in LIMITS} == LIMITS

    response = client.patch(f"{URL}{course.pk}/quota/", {"running_labs": None, "snapshots_per_lab": 0}, format="json")
    assert response.status_code == 200
    quota = CourseQuota.objects.get(course=course)
    assert quota.running_labs is None and quota.snapshots_per_lab == 0 and quota.vcpu_total == 200

    partial_put = client.put(f"{URL}{course.pk}/quota/", {"running_labs": 3}, format="json")
    assert partial_put.status_code == 400, "PUT sets every limit; PATCH sets some"
    negative = client.patch(f"{URL}{course.pk}/quota/", {"vcpu_total": -1}, format="json")
    assert negative.status_code == 400 and "vcpu_total" in negative.json()["errors"]


def test_only_admins_set_quotas():
    teacher = InstructorFactory()
    course = make_course(teacher)
    student = _enroll(course)
    for user in (teacher, student):
        response = client_for(user).patch(f"{URL}{course.pk}/quota/", {"running_labs": 100}, format="json")
        assert response.status_code == 403
        assert response.json()["detail"] == "Only admins can set quotas."
    assert client_for().get(f"{URL}{course.pk}/quota/").status_code == 403
    assert CourseQuota.objects.get(course=course).running_labs is None


@pytest.fixture
def busy_course(monkeypatch):
    """A course whose labs use 6 running labs and 48 vCPUs (the labs app is not asked)."""
    course = make_course(InstructorFactory())
    monkeypatch.setattr(
        usage, "_source", lambda c: usage.Usage(running_labs=6, vcpu=48) if c == course else usage.Usage()
    )
    return course


def test_a_quota_can_be_lowered_below_usage_and_usage_says_so(busy_course):
    course = busy_course
    response = client_for(AdminFactory()).patch(
        f"{URL}{course.pk}/quota/", {"running_labs": 4, "vcpu_total": 60}, format="json"
    )
    assert response.status_code == 200, response.json()

    bars = {bar["name"]: bar for bar in client_for(AdminFactory()).get(f"{URL}{course.pk}/usage/").json()}
    assert bars["running_labs"] == {
        "name": "running_labs",
        "label": "Labs running at once",
        "used": 6.0,
        "limit": 4,
        "unit": "",
        "percent": 100,
        "level": "full",
        "over": True,
    }
    assert (bars["vcpu_total"]["percent"], bars["vcpu_total"]["level"], bars["vcpu_total"]["over"]) == (
        80,
        "warn",
        False,
    )
    assert bars["memory_gb_total"]["limit"] is None and bars["memory_gb_total"]["level"] == "ok"


def test_usage_is_read_by_anyone_who_sees_the_course(busy_course):
    student = _enroll(busy_course)
    response = client_for(student).get(f"{URL}{busy_course.pk}/usage/")
    assert response.status_code == 200 and len(response.json()) == 8  # the warm pool's bar is the eighth
    assert client_for(StudentFactory()).get(f"{URL}{busy_course.pk}/usage/").status_code == 404


# Top-ups


def test_instructors_top_up_an_enrolled_student():
    teacher = InstructorFactory()
    course = make_course(teacher)
    student = _enroll(course)
    response = client_for(teacher).post(
        f"{URL}{course.pk}/top-ups/",
        {"student": student.username, "extra_lab_hours": 5, "reason": "Lab 4 retake"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["student"] == student.username and response.json()["granted_by"] == teacher.username
    assert response.json()["extra_lab_hours"] == 5 and response.json()["extra_labs"] == 0


def test_bad_top_ups_are_refused_in_words():
    teacher = InstructorFactory()
    course = make_course(teacher)
    stranger = StudentFactory()
    client = client_for(teacher)
    base = f"{URL}{course.pk}/top-ups/"
    not_enrolled = client.post(base, {"student": stranger.username, "extra_labs": 1}, format="json")
    assert not_enrolled.status_code == 400
    assert not_enrolled.json()["errors"] == {"student": [f"{stranger.username} is not enrolled in {course.code}."]}
    _enroll(course, stranger)
    nothing = client.post(base, {"student": stranger.username}, format="json")
    assert nothing.status_code == 400
    assert nothing.json()["detail"] == "A top-up adds at least one lab hour or one lab."
    unknown = client.post(base, {"student": "nobody", "extra_labs": 1}, format="json")
    assert unknown.status_code == 400 and "student" in unknown.json()["errors"]
    assert not QuotaTopUp.objects.exists()


def test_students_and_other_instructors_cannot_top_up():
    course = make_course(InstructorFactory())
    student = _enroll(course)
    body = {"student": student.username, "extra_labs": 3}
    refused = client_for(student).post(f"{URL}{course.pk}/top-ups/", body, format="json")
    assert refused.status_code == 403
    assert client_for(InstructorFactory()).post(f"{URL}{course.pk}/top-ups/", body, format="json").status_code == 404
    assert client_for(AdminFactory()).post(f"{URL}{course.pk}/top-ups/", body, format="json").status_code == 201
    assert QuotaTopUp.objects.count() == 1


def test_options_on_a_quota_describes_it_instead_of_failing():
    teacher = InstructorFactory()
    course = make_course(teacher)
    response = client_for(AdminFactory()).options(f"/api/v1/courses/{course.pk}/quota/")
    assert response.status_code == 200
    assert "running_labs" in response.json()["actions"]["PUT"]
    assert client_for(StudentFactory()).options(f"/api/v1/courses/{course.pk}/quota/").status_code == 200


# Bad input (issue 10): bounds live in the model, so every path refuses them in words


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("lease_hours", 99_999_999, "less than or equal to 8760"),
        ("idle_minutes", 10**9, "less than or equal to 525600"),
        ("lifetime_days_after_end", 4000, "less than or equal to 3650"),
        ("snapshots_per_lab", 101, "less than or equal to 100"),
    ],
)
def test_a_quota_out_of_range_is_a_400_in_words_and_changes_nothing(name, value, words):
    course = make_course(InstructorFactory())
    client = client_for(AdminFactory())
    assert client.patch(f"{URL}{course.pk}/quota/", {name: 4}, format="json").status_code == 200
    response = client.patch(f"{URL}{course.pk}/quota/", {name: value}, format="json")
    assert response.status_code == 400
    assert words in " ".join(response.json()["errors"][name])
    assert getattr(CourseQuota.objects.get(course=course), name) == 4


@pytest.mark.parametrize("ends_on", ["9999-12-31", "1999-12-31"])
def test_a_course_date_out_of_range_is_a_400_in_words(ends_on):
    teacher = InstructorFactory()
    course = make_course(teacher)
    response = client_for(teacher).patch(f"{URL}{course.pk}/", {"ends_on": ends_on}, format="json")
    assert response.status_code == 400
    assert "Pick a date between 2000-01-01 and" in " ".join(response.json()["errors"]["ends_on"])
    course.refresh_from_db()
    assert course.ends_on.isoformat() != ends_on


def test_a_student_reading_their_course_gets_no_vcenter_ids():
    """``endpoints`` (the vCenters' ids) is null for whoever does not run the course, as
    ``endpoints_in_use``; its staff read it, and a null given back is a 400 in words."""
    teacher = InstructorFactory()
    version = make_published_version(teacher)
    course = make_course(teacher, open_with=version)
    endpoint = version.template.endpoint
    course.endpoints.set([endpoint])
    student = _enroll(course)

    assert client_for(student).get(f"{URL}{course.pk}/").json()["endpoints"] is None
    assert client_for(student).get(URL).json()["results"][0]["endpoints"] is None
    assert client_for(teacher).get(f"{URL}{course.pk}/").json()["endpoints"] == [endpoint.pk]
    response = client_for(teacher).patch(f"{URL}{course.pk}/", {"endpoints": None}, format="json")
    assert response.status_code == 400 and response.json()["errors"]["endpoints"]
    assert list(course.endpoints.all()) == [endpoint]
