"""The LTI tool's REST API: what admins configure (platforms, the signing key) and what a
course's instructors do with its LMS links (sync the roster, send a score). Who may call what is
in tests/integration/portal/test_permission_matrix.py."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from lti.models import CourseLink, Platform, ToolKey
from tests.factories import AdminFactory, LtiPlatformFactory, open_course
from tests.support.lti_platform import LEARNER

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

CANVAS = {
    "name": "Canvas",
    "issuer": "https://canvas.instructure.com",
    "client_id": "10000000000001",
    "deployment_ids": ["1:8865aa05b4b79b64a91a86042e43af5ea8ae79eb"],
    "auth_login_url": "https://sso.canvaslms.com/api/lti/authorize_redirect",
    "auth_token_url": "https://sso.canvaslms.com/login/oauth2/token",
    "key_set_url": "https://sso.canvaslms.com/api/lti/security/jwks",
}


@pytest.fixture
def admin_api():
    client = APIClient()
    client.force_authenticate(AdminFactory())
    return client


def test_an_admin_registers_an_lms_and_changes_it(admin_api):
    created = admin_api.post("/api/v1/lti/platforms/", CANVAS, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["deployment_ids"] == CANVAS["deployment_ids"] and created.json()["is_active"] is True
    pk = created.json()["id"]
    changed = admin_api.patch(f"/api/v1/lti/platforms/{pk}/", {"deployment_ids": ["1:a", "2:b"]}, format="json")
    assert changed.status_code == 200 and Platform.objects.get(pk=pk).deployment_ids == ["1:a", "2:b"]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"issuer": "not a url"}, "issuer", "valid URL"),
        ({"key_set_url": "ftp://x.example/jwks"}, "key_set_url", "valid URL"),
        ({"deployment_ids": []}, "deployment_ids", "at least 1"),
        ({"deployment_ids": ["a", "a"]}, "deployment_ids", "listed twice"),
        ({"deployment_ids": ["x" * 256]}, "deployment_ids", "255"),
        ({"name": ""}, "name", "blank"),
        ({"frame_origins": ["https://school.instructure.com/courses"]}, "frame_origins", "not an origin"),
        ({"frame_origins": "https://school.instructure.com"}, "frame_origins", "list"),
    ],
)
def test_a_bad_platform_is_refused_in_words_and_nothing_is_saved(admin_api, change, field, words):
    response = admin_api.post("/api/v1/lti/platforms/", {**CANVAS, **change}, format="json")
    assert response.status_code == 400
    assert words.lower() in str(response.json()["errors"][field]).lower()
    assert not Platform.objects.exists()


def test_an_lms_registered_twice_is_refused_in_words(admin_api):
    LtiPlatformFactory(issuer=CANVAS["issuer"], client_id=CANVAS["client_id"])
    response = admin_api.post("/api/v1/lti/platforms/", {**CANVAS, "name": "Canvas again"}, format="json")
    assert response.status_code == 400 and "already exists" in response.json()["detail"]


def test_an_admin_rotates_the_signing_key_and_both_stay_published(admin_api):
    first = admin_api.post("/api/v1/lti/keys/rotate/").json()["kid"]
    second = admin_api.post("/api/v1/lti/keys/rotate/").json()["kid"]
    assert first != second and ToolKey.objects.filter(active=True).count() == 2
    assert {key["kid"] for key in APIClient().get("/lti/jwks/").json()["keys"]} == {first, second}


def test_an_instructor_syncs_the_roster_and_sends_a_score_through_the_api(registered, lti_platform):
    course = open_course(students=0)
    link = CourseLink.objects.create(
        platform=registered,
        deployment_id=lti_platform.deployment_id,
        context_id="course-101",
        course=course,
        memberships_url=f"{lti_platform.issuer}/nrps/course-101/memberships",
        lineitems_url=f"{lti_platform.issuer}/ags/course-101/lineitems",
        ags_scopes=[
            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
            "https://purl.imsglobal.org/spec/lti-ags/scope/score",
        ],
    )
    lti_platform.set_members(
        "course-101", [{"user_id": "ann", "email": "ann@school.example", "roles": [LEARNER], "status": "Active"}]
    )
    client = APIClient()
    client.force_authenticate(course.instructors.get())
    synced = client.post(f"/api/v1/lti/links/{link.pk}/sync/")
    assert synced.status_code == 200 and synced.json()["enrolled"] == 1
    listed = client.get("/api/v1/lti/links/").json()["results"]
    assert [(item["id"], item["has_roster_service"], item["has_grade_book"]) for item in listed] == [
        (link.pk, True, True)
    ]
    student = course.enrollments.get().student
    bad = client.post(
        f"/api/v1/lti/links/{link.pk}/scores/", {"student": student.pk, "score_given": 5, "score_maximum": 4}
    )
    assert bad.status_code == 400 and "between 0 and its maximum" in bad.json()["detail"]
    stranger = client.post(
        f"/api/v1/lti/links/{link.pk}/scores/", {"student": 999999, "score_given": 1, "score_maximum": 1}
    )
    assert stranger.status_code == 400 and "No student with id 999999" in str(stranger.json())
    sent = client.post(
        f"/api/v1/lti/links/{link.pk}/scores/", {"student": student.pk, "score_given": 3, "score_maximum": 4}
    )
    assert sent.status_code == 200 and sent.json()["line_item"].startswith(lti_platform.issuer)
    assert [(score["userId"], score["scoreGiven"]) for score in lti_platform.scores()] == [("ann", 3)]


def test_an_instructor_unlinks_an_lms_course_and_it_is_recorded(registered, lti_platform):
    from core.models import AuditEntry

    course = open_course(students=0)
    link = CourseLink.objects.create(
        platform=registered, deployment_id=lti_platform.deployment_id, context_id="course-101", course=course
    )
    client = APIClient()
    client.force_authenticate(course.instructors.get())
    assert client.delete(f"/api/v1/lti/links/{link.pk}/").status_code == 204
    assert not CourseLink.objects.exists()
    assert AuditEntry.objects.filter(action="lti.link_delete", detail__contains="course-101").exists()
