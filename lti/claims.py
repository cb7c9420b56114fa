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
# LMS roles that teach a course in Nestlab: teachers, course designers, teaching assistants
# (a TA watches the class and resets labs), and the LMS's administrators.
TEACHING_ROLES = {"Instructor", "ContentDeveloper", "TeachingAssistant", "Administrator", "Mentor"}
LEARNING_ROLES = {"Learner"}


def _short(role: str) -> tuple[str, str]:
    """An IMS role URI (or a short LTI 1.1 name) as (vocabulary, name); sub-roles
    (membership/Instructor#TeachingAssistant) count as their principal role's sub-role name."""
    if "#" in role:
        vocabulary, name = role.rsplit("#", 1)
        return vocabulary + "#", name
    return MEMBERSHIP, role


def nestlab_role(lms_roles: list[str]) -> roles.Role | None:
    """Instructor when a course-membership role teaches (or the person is an LMS administrator),
    else student when one learns, else None (guests, observers: refused). Never admin: an LMS
    does not make Nestlab admins."""
    names = set()
    for role in lms_roles if isinstance(lms_roles, list) else []:
        if not isinstance(role, str):
            continue
        vocabulary, name = _short(role)
        if vocabulary in (MEMBERSHIP, INSTITUTION, SYSTEM) or vocabulary.startswith(MEMBERSHIP.rstrip("#")):
            names.add(name)
    if names & TEACHING_ROLES:
        return roles.Role.INSTRUCTOR
    if names & LEARNING_ROLES:
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
