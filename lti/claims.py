"""Reading an LTI 1.3 message: the claims Nestlab uses, by their IMS names, and the one rule that
turns an LMS's roles into a Nestlab role. Pure functions (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.utils import timezone

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
        vocabulary, name, _ = _parts(role)  # a sub-role refines its principal role, never replaces it
        if vocabulary == MEMBERSHIP:
            course_roles.add(name)
        elif vocabulary in (INSTITUTION, SYSTEM):
            everywhere.add(name)
    if course_roles & TEACHING_ROLES or ADMINISTRATOR in everywhere:
        return roles.Role.INSTRUCTOR
    if course_roles & LEARNING_ROLES:
        return roles.Role.STUDENT
    return None


# Identifiers (subject, course id, deployment id) longer than this are refused, not cut: two
# people must never share one by a cut.
MAX_IDENTIFIER = 255
# A launch's expiry is kept for its nonce at most this long (an LMS may send any exp).
MAX_NONCE_DAYS = 2


def text(value: Any) -> str:
    """A claim that should be text: numbers are read as text, anything else as empty."""
    if isinstance(value, bool) or value is None:
        return ""
    return str(value) if isinstance(value, (str, int)) else ""


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def url(value: Any) -> str:
    """An http(s) address Nestlab can call, or empty (an address it cannot use is left out)."""
    candidate = text(value)
    if not candidate or len(candidate) > 1024:
        return ""
    try:
        URLValidator(schemes=["http", "https"])(candidate)
    except ValidationError:
        return ""
    return candidate


def expiry(data: dict[str, Any]) -> datetime:
    """Until when a launch's nonce is kept: its exp, within now and two days from now."""
    now = timezone.now()
    try:
        expires = datetime.fromtimestamp(int(data.get("exp", 0)), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return now + timedelta(days=MAX_NONCE_DAYS)
    return min(max(expires, now), now + timedelta(days=MAX_NONCE_DAYS))


def identifier_problem(data: dict[str, Any]) -> tuple[str, str] | None:
    """Why a launch's identifiers cannot be kept, as (words for the person, reason for the log),
    or None: the subject must be text, it and the course's id at most 255 characters."""
    subject = text(data.get("sub"))
    if not subject:
        return "Your LMS sent no user with this launch.", "a launch without a subject."
    for name, value in (("user id", subject), ("course id", text(context(data).get("id")))):
        if len(value) > MAX_IDENTIFIER:
            return (
                f"Your LMS sent a {name} longer than {MAX_IDENTIFIER} characters, which Nestlab cannot keep.",
                f"a {name} of {len(value)} characters.",
            )
    return None


def context(data: dict[str, Any]) -> dict[str, Any]:
    return mapping(data.get(CONTEXT))


def custom(data: dict[str, Any]) -> dict[str, Any]:
    return mapping(data.get(CUSTOM))


def deployment_id(data: dict[str, Any]) -> str:
    return text(data.get(DEPLOYMENT_ID))


def is_deep_linking(data: dict[str, Any]) -> bool:
    return data.get(MESSAGE_TYPE) == DEEP_LINKING_REQUEST


def person(data: dict[str, Any]) -> dict[str, str]:
    """Name and e-mail as the LMS gives them (a launch's claims or a roster member), fitted to
    the account's fields; an e-mail that is not one is left out."""
    email = text(data.get("email"))
    try:
        validate_email(email)
    except ValidationError:
        email = ""
    return {
        "first_name": text(data.get("given_name"))[:150],
        "last_name": text(data.get("family_name"))[:150],
        "email": email if len(email) <= 254 else "",
    }


def display_name(data: dict[str, Any]) -> str:
    """Who a launch is about, for the audit log."""
    return text(data.get("email")) or text(data.get("name")) or text(data.get("sub"))
