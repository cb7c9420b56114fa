"""The one rule that turns an LMS's roles into a Nestlab role, and the claims read from a launch."""

from __future__ import annotations

import pytest

from core.roles import Role
from lti import claims

M = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
I = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"  # noqa: E741


@pytest.mark.parametrize(
    ("lms_roles", "expected"),
    [
        ([M + "Learner"], Role.STUDENT),
        ([M + "Instructor"], Role.INSTRUCTOR),
        ([M + "Learner", M + "Instructor"], Role.INSTRUCTOR),
        ([M + "ContentDeveloper"], Role.INSTRUCTOR),
        (["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"], Role.INSTRUCTOR),
        # A sub-role refines its principal role, never replaces it.
        (["http://purl.imsglobal.org/vocab/lis/v2/membership/Learner#Instructor"], Role.STUDENT),
        ([I + "Administrator"], Role.INSTRUCTOR),  # an LMS admin teaches; never a Nestlab admin
        ([I + "Instructor"], None),  # teaches somewhere in the school, not in this course
        ([I + "Instructor", M + "Learner"], Role.STUDENT),  # a teacher taking a course learns in it
        ([M + "Mentor"], None),  # Canvas's observers (parents)
        ([M + "Mentor", M + "Learner"], Role.STUDENT),
        (["Learner"], Role.STUDENT),  # LTI 1.1 short names
        ([I + "Student"], None),  # a student of the school, not of this course
        ([M + "Guest"], None),
        ([M + "Observer"], None),
        ([], None),
        ("Learner", None),  # not a list: nothing
        ([42, None], None),
    ],
)
def test_lms_roles_give_a_nestlab_role(lms_roles, expected):
    assert claims.nestlab_role(lms_roles) == expected


def test_a_person_is_fitted_to_the_accounts_fields():
    person = claims.person({"given_name": "A" * 200, "family_name": None, "email": "ada@school.example"})
    assert person == {"first_name": "A" * 150, "last_name": "", "email": "ada@school.example"}


def test_claims_of_the_wrong_shape_read_as_empty():
    data = {claims.CONTEXT: "course-101", claims.CUSTOM: ["x"], claims.DEPLOYMENT_ID: 7}
    assert claims.context(data) == {} and claims.custom(data) == {} and claims.deployment_id(data) == "7"
    assert not claims.is_deep_linking(data)
    assert claims.is_deep_linking({claims.MESSAGE_TYPE: "LtiDeepLinkingRequest"})
