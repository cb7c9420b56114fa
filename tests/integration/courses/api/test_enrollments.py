"""courses/api/views.py: a course's roster, one student at a time or from a CSV file."""

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from core import roles
from courses.models import Enrollment
from tests.factories import AdminFactory, InstructorFactory, StudentFactory
from tests.integration.courses.api.conftest import client_for, make_course

pytestmark = pytest.mark.django_db

User = get_user_model()


def _url(course) -> str:
    return f"/api/v1/courses/{course.pk}/enrollments/"


def _csv(text: str, name: str = "roster.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")


def test_instructors_list_their_roster():
    teacher = InstructorFactory()
    course = make_course(teacher)
    bob, amy = StudentFactory(username="bob"), StudentFactory(username="amy")
    course.enrollments.create(student=bob)
    course.enrollments.create(student=amy, source="csv")
    rows = client_for(teacher).get(_url(course)).json()["results"]
    assert [(row["username"], row["source"]) for row in rows] == [("amy", "csv"), ("bob", "manual")]
    assert rows[0]["email"] == "amy@example.edu"


def test_students_and_other_instructors_do_not_see_rosters():
    course = make_course(InstructorFactory())
    student = StudentFactory()
    course.enrollments.create(student=student)
    refused = client_for(student).get(_url(course))
    assert refused.status_code == 403
    assert refused.json()["detail"] == "Only this course's instructors can change its roster."
    assert client_for(InstructorFactory()).get(_url(course)).status_code == 404
    assert client_for(StudentFactory()).get(_url(course)).status_code == 404
    assert client_for().get(_url(course)).status_code == 403
    assert client_for(AdminFactory()).get(_url(course)).json()["count"] == 1


def test_an_existing_student_is_enrolled_by_username_once():
    teacher = InstructorFactory()
    course = make_course(teacher)
    student = StudentFactory(username="carol")
    client = client_for(teacher)
    response = client.post(_url(course), {"username": "carol"}, format="json")
    assert response.status_code == 201
    assert response.json()["username"] == "carol" and response.json()["generated_password"] is None
    again = client.post(_url(course), {"username": "carol"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == response.json()["id"]
    assert course.enrollments.get().student == student


def test_an_unknown_username_or_a_staff_account_is_refused_in_words():
    teacher = InstructorFactory()
    course = make_course(teacher)
    client = client_for(teacher)
    unknown = client.post(_url(course), {"username": "nobody"}, format="json")
    assert unknown.status_code == 400
    assert unknown.json()["errors"]["username"][0].startswith("No account is called nobody.")
    staff = client.post(_url(course), {"username": InstructorFactory(username="ted").username}, format="json")
    assert staff.status_code == 400
    assert staff.json()["detail"] == "ted is a staff account, not a student."
    assert not course.enrollments.exists()


def test_a_new_student_gets_a_generated_password_once():
    teacher = InstructorFactory()
    course = make_course(teacher)
    response = client_for(teacher).post(
        _url(course),
        {"username": "dana", "email": "dana@example.edu", "first_name": "Dana", "last_name": "Ruiz"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["username"] == "dana" and body["first_name"] == "Dana"
    password = body["generated_password"]
    assert password and User.objects.get(username="dana").check_password(password)
    assert roles.is_student(User.objects.get(username="dana"))
    listed = client_for(teacher).get(_url(course))
    assert password.encode() not in listed.content and b"generated_password" not in listed.content


def test_a_given_password_is_never_answered():
    teacher = InstructorFactory()
    course = make_course(teacher)
    response = client_for(teacher).post(_url(course), {"username": "eve", "password": "Given-pw-123456"}, format="json")
    assert response.status_code == 201
    assert response.json()["generated_password"] is None
    assert b"Given-pw-123456" not in response.content
    assert User.objects.get(username="eve").check_password("Given-pw-123456")


def test_creating_a_taken_username_changes_nothing():
    teacher = InstructorFactory()
    course = make_course(teacher)
    StudentFactory(username="fay")
    response = client_for(teacher).post(_url(course), {"username": "fay", "email": "x@example.edu"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "username": ["An account called fay exists already: leave the other fields empty to enroll it."]
    }
    assert not course.enrollments.exists()


def test_students_cannot_enroll_anyone():
    course = make_course(InstructorFactory())
    student = StudentFactory()
    course.enrollments.create(student=student)
    response = client_for(student).post(_url(course), {"username": "mallory", "email": "m@example.edu"}, format="json")
    assert response.status_code == 403
    assert not User.objects.filter(username="mallory").exists()


def test_instructors_remove_a_student_and_the_account_stays():
    teacher = InstructorFactory()
    course = make_course(teacher)
    student = StudentFactory()
    enrollment = course.enrollments.create(student=student)
    other = make_course(InstructorFactory(), code="other")

    assert client_for(student).delete(f"{_url(course)}{enrollment.pk}/").status_code == 403
    assert client_for(other.instructors.get()).delete(f"{_url(course)}{enrollment.pk}/").status_code == 404
    assert client_for(teacher).delete(f"{_url(other)}{enrollment.pk}/").status_code == 404
    assert client_for(teacher).delete(f"{_url(course)}{enrollment.pk}/").status_code == 204
    assert not Enrollment.objects.exists() and User.objects.filter(pk=student.pk).exists()


# Roster upload


def test_a_roster_file_enrolls_everyone_and_answers_new_passwords_once():
    teacher = InstructorFactory()
    course = make_course(teacher)
    StudentFactory(username="gus")
    course.enrollments.create(student=StudentFactory(username="hal"))
    text = (
        "email,first_name,last_name,password\n"
        "gus@example.edu,Gus,Ng,\n"
        "hal@example.edu,Hal,Oz,\n"
        "ida@example.edu,Ida,Pe,\n"
        "jo@example.edu,Jo,Qu,Jo-given-pass-1\n"
    )
    response = client_for(teacher).post(
        f"/api/v1/courses/{course.pk}/roster/", {"file": _csv(text)}, format="multipart"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert sorted(body["enrolled"]) == ["gus", "ida", "jo"]
    assert body["already_enrolled"] == ["hal"]
    created = {row["username"]: row["password"] for row in body["created"]}
    assert set(created) == {"ida", "jo"} and created["jo"] is None
    assert User.objects.get(username="ida").check_password(created["ida"])
    assert b"Jo-given-pass-1" not in response.content
    assert course.enrollments.count() == 4


def test_a_roster_with_bad_rows_applies_nothing_and_names_the_lines():
    teacher = InstructorFactory()
    course = make_course(teacher)
    InstructorFactory(username="kim")
    text = "username,email\nlee,lee@example.edu\nmo,not-an-email\nkim,\nlee,\n"
    response = client_for(teacher).post(
        f"/api/v1/courses/{course.pk}/roster/", {"file": _csv(text)}, format="multipart"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["errors"] == {
        "lines": {
            "3": "'not-an-email' is not an email address",
            "4": "'kim' is a staff account, not a student",
            "5": "'lee' is also on line 2",
        }
    }
    assert body["detail"].startswith("Nothing from the file was applied.")
    assert "line 3: 'not-an-email' is not an email address" in body["detail"]
    assert not User.objects.filter(username__in=["lee", "mo"]).exists()
    assert not course.enrollments.exists()


def test_a_file_that_is_not_a_roster_is_refused_as_a_whole():
    teacher = InstructorFactory()
    course = make_course(teacher)
    url = f"/api/v1/courses/{course.pk}/roster/"
    client = client_for(teacher)

    latin1 = SimpleUploadedFile("r.csv", "username\nzoë\n".encode("latin-1"), content_type="text/csv")
    response = client.post(url, {"file": latin1}, format="multipart")
    assert response.status_code == 400
    assert response.json()["errors"] == {"file": ["The file is not UTF-8 text; save it as CSV UTF-8."]}
    assert response.json()["detail"].endswith("Nothing from the file was applied.")

    header = client.post(url, {"file": _csv("name,mail\na,b\n")}, format="multipart")
    assert header.status_code == 400 and "username or email required" in header.json()["detail"]

    missing = client.post(url, {}, format="multipart")
    assert missing.status_code == 400 and "file" in missing.json()["errors"]

    json_body = client.post(url, {"file": "username\nx\n"}, format="json")
    assert json_body.status_code == 415
    assert not course.enrollments.exists()


def test_only_the_course_instructors_upload_rosters():
    course = make_course(InstructorFactory())
    student = StudentFactory()
    course.enrollments.create(student=student)
    url = f"/api/v1/courses/{course.pk}/roster/"
    assert client_for(student).post(url, {"file": _csv("username\nnew1\n")}, format="multipart").status_code == 403
    assert (
        client_for(InstructorFactory()).post(url, {"file": _csv("username\nnew2\n")}, format="multipart").status_code
        == 404
    )
    assert client_for().post(url, {"file": _csv("username\nnew3\n")}, format="multipart").status_code == 403
    assert not User.objects.filter(username__startswith="new").exists()


def test_a_weak_student_password_is_refused_in_words():
    """Finding 6 (docs/security.md): a roster row with password `1` was accepted."""
    teacher = InstructorFactory()
    course = make_course(teacher)
    response = client_for(teacher).post(_url(course), {"username": "weak", "password": "1"}, format="json")
    assert response.status_code == 400
    assert "too short" in response.json()["detail"]
    assert not User.objects.filter(username="weak").exists()


def test_a_roster_row_with_a_weak_password_names_its_line():
    teacher = InstructorFactory()
    course = make_course(teacher)
    roster = "username,password\nstrong,Strong-pass-2026\nweak,1\n"
    response = client_for(teacher).post(
        f"/api/v1/courses/{course.pk}/roster/", {"file": _csv(roster)}, format="multipart"
    )
    assert response.status_code == 400
    assert "line 3: the password is not accepted: This password is too short." in response.json()["detail"]
    assert not User.objects.filter(username__in=["strong", "weak"]).exists()


def test_a_roster_value_over_the_csv_field_limit_is_a_400_in_words():
    """A field over 131,072 characters was a 500 (csv.Error); the docs promise a 400."""
    teacher = InstructorFactory()
    course = make_course(teacher)
    roster = "username,email\nana,ana@example.edu\n" + "x" * 140_000 + ",b@example.edu\n"
    response = client_for(teacher).post(
        f"/api/v1/courses/{course.pk}/roster/", {"file": _csv(roster)}, format="multipart"
    )
    assert response.status_code == 400
    assert "line 3: a value is longer than 131,072 characters" in response.json()["detail"]
    assert not course.enrollments.exists()
