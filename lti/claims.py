"""Reading an LTI 1.3 message: the claims Nestlab uses, by their IMS names, and the one rule that
turns an LMS's roles into a Nestlab role. Pure functions (no database)."""

from __future__ import annotations

from typing import Any

from core import roles

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
MESSAGE_TYPE = LTI + "message_type"
ROLES = LTI + "roles"
CONTEXT = LTI + "context"
CUSTOM = LTI + "custom"
DEPLOYMENT_ID = LTI + "deployment_id"
RESOURCE_LINK = LTI + "resource_link"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
DEEP_LINKING_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
# The custom parameter a deep link made by Nestlab carries: which course link it opens.
LINK_PARAMETER = "nestlab_link"

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INSTITUTION = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
SYSTEM = "http://purl.imsglobal.org/vocab/lis/v2/system/person#"
# Roles in the LMS course (context) that teach it in Nestlab: teachers, course designers,
# teaching assistants (sub-roles of Instructor, e.g. Instructor#TeachingAssistant) and the
# course's administrators. Mentors are not among them: Canvas sends Mentor for observers (parents).
TEACHING_ROLES = {"Instructor", "ContentDeveloper", "TeachingAssistant", "Administrator"}
LEARNING_ROLES = {"Learner"}
# Roles of the person in the whole school or LMS: only an LMS administrator teaches here (they
# enter any course); "Instructor" or "Faculty" of the institution says nothing of this course.
ADMINISTRATOR = "Administrator"


def _parts(role: str) -> tuple[str, str, str]:
    """An IMS role URI as (vocabulary, principal role, sub-role): membership#Instructor,
    membership/Instructor#TeachingAssistant, institution/person#Administrator; a short LTI 1.1
    name (Learner) is a course role."""
    if "#" not in role:
        return MEMBERSHIP, role, ""
    vocabulary, name = role.rsplit("#", 1)
    if vocabulary.startswith(MEMBERSHIP.rstrip("#") + "/"):  # membership/Instructor#TeachingAssistant
        return MEMBERSHIP, vocabulary.rsplit("/", 1)[1], name
    return vocabulary + "#", name, ""


def nestlab_role(lms_roles: list[str]) -> roles.Role | None:
    """Instructor when a course role teaches (or the person administers the LMS), else student
    when they learn in the course, else None (guests, observers, mentors: refused). Never admin:
    an LMS does not make Nestlab admins."""
    course_roles, everywhere = set(), set()
    for role in lms_roles if isinstance(lms_roles, list) else []:
        if not isinstance(role, str):
            continue
        vocabulary, name, sub_role = _parts(role)
        if vocabulary == MEMBERSHIP:
            course_roles.update({name, sub_role} - {""})
        elif vocabulary in (INSTITUTION, SYSTEM):
            everywhere.add(name)
    if course_roles & TEACHING_ROLES or ADMINISTRATOR in everywhere:
        return roles.Role.INSTRUCTOR
    if course_roles & LEARNING_ROLES:
        return roles.Role.STUDENT
    return None


def context(data: dict[str, Any]) -> dict[str, Any]:
    value = data.get(CONTEXT)
    return value if isinstance(value, dict) else {}


def custom(data: dict[str, Any]) -> dict[str, Any]:
    value = data.get(CUSTOM)
    return value if isinstance(value, dict) else {}


def deployment_id(data: dict[str, Any]) -> str:
    return str(data.get(DEPLOYMENT_ID, ""))


def is_deep_linking(data: dict[str, Any]) -> bool:
    return data.get(MESSAGE_TYPE) == DEEP_LINKING_REQUEST


def person(data: dict[str, Any]) -> dict[str, str]:
    """Name and e-mail as the LMS gives them (a launch's claims or a roster member), fitted to
    the account's fields."""
    return {
        "first_name": str(data.get("given_name") or "")[:150],
        "last_name": str(data.get("family_name") or "")[:150],
        "email": str(data.get("email") or "")[:254],
    }


def display_name(data: dict[str, Any]) -> str:
    """Who a launch is about, for the audit log."""
    return str(data.get("email") or data.get("name") or data.get("sub") or "")
