"""Every write of the LTI tool: platforms (admins), launches (who the person is, their role,
their course), course links, the roster from the LMS (Names and Role Provisioning) and scores
to its grade book (Assignment and Grade Services). Pages, API routes, the admin and tasks call
these, so checks, errors and audit are written once."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DataError, IntegrityError, transaction
from django.utils import timezone
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.exception import LtiException, LtiServiceException
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem
from pylti1p3.names_roles import NamesRolesProvisioningService
from pylti1p3.service_connector import ServiceConnector
from requests import RequestException

from accounts import selectors as accounts_selectors
from accounts import services as accounts_services
from core import audit, rate_limit, realtime, roles
from core.validation import save_valid
from courses import permissions as course_permissions
from courses.models import Course, Enrollment
from lti import claims, keys
from lti.http import LmsSession
from lti.models import CourseLink, Identity, LinkMember, Platform, UsedNonce
from lti.tool_config import registration_of

User = get_user_model()

PLATFORM_FIELDS = (
    "name",
    "issuer",
    "client_id",
    "deployment_ids",
    "auth_login_url",
    "auth_token_url",
    "auth_audience",
    "key_set_url",
    "frame_origins",
    "trust_emails",
    "is_active",
)
ADMINS_ONLY = "Only admins can register LMS platforms."
NOT_A_ROLE_WORDS = (
    "Your role in this LMS course (e.g. guest or observer) does not open Nestlab. "
    "Learners, instructors and course designers can use it."
)
STAFF_EMAIL_WORDS = (
    "An instructor's or admin's account in Nestlab has your e-mail address, and a launch from an LMS never "
    "takes over a staff account by its e-mail. Ask a Nestlab admin to link your LMS account to it "
    "(Admin, LMS identities)."
)
NOT_LINKED_WORDS = (
    "This LMS activity is not linked to a Nestlab course yet. Your instructor links it by opening it once "
    "(or by adding it with the LMS's activity picker)."
)
DEEP_LINKING_STUDENT_WORDS = "Only instructors add Nestlab activities to an LMS course."
SERVICE_TIMEOUT_WORDS = "The LMS did not answer"


REFUSALS_AUDITED = rate_limit.Limit(name="lti-refusals", attempts=20, window_seconds=3600)


class LaunchRefused(Exception):
    """A launch Nestlab does not accept; ``words`` are for the person, ``reason`` for the log."""

    def __init__(self, words: str, reason: str) -> None:
        super().__init__(words)
        self.words = words
        self.reason = reason


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise PermissionDenied(message)


def _recorded(
    action: str,
    *,
    result: str = audit.Result.SUCCEEDED,
    actor: AbstractBaseUser | None = None,
    actor_username: str | None = None,
    target: audit.Target | None = None,
    detail: str = "",
) -> None:
    """An account entry in the audit log (what every write here records; a refused launch is a
    failed login instead, see ``launch_refused``)."""
    audit.audit_record(
        category=audit.Category.ACCOUNT,
        action=action,
        result=result,
        actor=actor,
        actor_username=actor_username,
        target=target,
        detail=detail,
    )


# Platforms (admins)


@transaction.atomic
def platform_create(*, actor: AbstractBaseUser, **fields: Any) -> Platform:
    """Register an LMS with the values it shows when Nestlab is added to it."""
    _require(roles.is_admin(actor), ADMINS_ONLY)
    platform = Platform(**{name: value for name, value in fields.items() if name in PLATFORM_FIELDS})
    save_valid(platform)
    _recorded(
        "lti.platform_create",
        actor=actor,
        target=audit.describe(platform),
        detail=f"{platform.issuer} (client {platform.client_id}).",
    )
    return platform


@transaction.atomic
def platform_update(*, platform: Platform, actor: AbstractBaseUser, **fields: Any) -> Platform:
    _require(roles.is_admin(actor), ADMINS_ONLY)
    for name, value in fields.items():
        if name in PLATFORM_FIELDS:
            setattr(platform, name, value)
    save_valid(platform)
    _recorded("lti.platform_update", actor=actor, target=audit.describe(platform))
    return platform


@transaction.atomic
def platform_delete(*, platform: Platform, actor: AbstractBaseUser) -> None:
    """Remove a platform with its links and identities (the accounts stay)."""
    _require(roles.is_admin(actor), ADMINS_ONLY)
    target = audit.describe(platform)
    platform.delete()
    _recorded("lti.platform_delete", actor=actor, target=target)


@transaction.atomic
def identity_link(*, identity: Identity, actor: AbstractBaseUser) -> Identity:
    """An admin links a platform's user to a Nestlab account (recorded)."""
    _require(roles.is_admin(actor), "Only admins can link LMS accounts.")
    save_valid(identity)
    _recorded(
        "lti.identity_link",
        actor=actor,
        target=audit.describe(identity.user),
        detail=f"LMS user {identity.subject} at {identity.platform.name} signs in as {identity.user.get_username()}.",
    )
    return identity


def tool_key_rotate(*, actor: AbstractBaseUser) -> str:
    """A new signing key (the old ones stay published); returns its kid."""
    _require(roles.is_admin(actor), "Only admins can rotate Nestlab's LTI key.")
    key = keys.rotate()
    _recorded("lti.key_rotate", actor=actor, detail=f"New LTI signing key {key.kid}.")
    return key.kid


# Launches


@dataclass(frozen=True)
class Launch:
    """A launch Nestlab accepted: who signed in, as what, and the course link it opens (if any)."""

    user: AbstractBaseUser
    role: roles.Role
    platform: Platform
    link: CourseLink | None
    deep_linking: bool


def launch_refused(*, words: str, reason: str, who: str = "", request=None) -> LaunchRefused:
    """Record a refused launch (a failed login) and return the exception to raise. Anyone may
    send a launch without signing in, so one address writes at most 20 such entries an hour."""
    address = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    if rate_limit.attempt(REFUSALS_AUDITED, address):
        audit.audit_record(
            category=audit.Category.LOGIN_FAILED,
            action="auth.lti",
            result=audit.Result.REFUSED,
            actor_username=who[:150],
            detail=reason[:500],
            request=request,
        )
    return LaunchRefused(words, reason)


def nonce_use(*, platform: Platform, nonce: str, expires_at: datetime) -> bool:
    """Record a launch's nonce; False if it was used before (the launch is a replay)."""
    UsedNonce.objects.filter(expires_at__lt=timezone.now()).delete()
    try:
        with transaction.atomic():
            UsedNonce.objects.create(platform=platform, nonce=nonce[:255], expires_at=expires_at)
    except IntegrityError:
        return False
    return True


def launch_accept(*, platform: Platform, data: dict[str, Any], request=None) -> Launch:
    """A validated launch (pylti1p3 checked its signature, issuer, audience, deployment, expiry and
    the login's nonce): the person's account and role, and the course link it opens. Refuses a
    replayed launch, a role that opens nothing, an e-mail that is a staff account's, claims of
    the wrong shape, and an LMS teacher of a course no Nestlab course is linked to who does not
    teach in Nestlab yet; a refusal changes nothing but the audit log."""
    who = claims.display_name(data)
    try:
        if not nonce_use(platform=platform, nonce=claims.text(data.get("nonce")), expires_at=claims.expiry(data)):
            raise LaunchRefused(
                "This launch was already used. Open the activity again from your LMS.",
                f"{platform.name}: a replayed launch (nonce used before).",
            )
        problem = claims.identifier_problem(data)
        if problem is not None:
            raise LaunchRefused(problem[0], f"{platform.name}: {problem[1]}")
        lms_role = claims.nestlab_role(data.get(claims.ROLES, []))
        if lms_role is None:
            raise LaunchRefused(NOT_A_ROLE_WORDS, f"{platform.name}: roles {data.get(claims.ROLES, [])} open nothing.")
        try:
            with transaction.atomic():
                link = _link_for(platform=platform, data=data)
                user = _account_for(platform=platform, data=data, lms_role=lms_role, linked=link is not None)
                role = _role_apply(user=user, lms_role=lms_role, link=link)
                if role == roles.Role.STUDENT and claims.is_deep_linking(data):
                    # An LMS offers the activity picker to its teachers; a learner's request for
                    # it is refused before anyone is signed in, and the account it would have made
                    # is rolled back with the rest.
                    raise LaunchRefused(
                        DEEP_LINKING_STUDENT_WORDS, f"{platform.name}: a learner sent a deep-linking request."
                    )
                if link is not None:
                    _link_refresh(link, data)
                    _course_join(link=link, user=user, role=role)
        except (ValidationError, DataError) as error:
            raise LaunchRefused(
                "Your LMS sent this launch in a form Nestlab cannot take. Tell the LMS's administrator.",
                f"{platform.name}: a launch Nestlab cannot store: {error}",
            ) from error
    except LaunchRefused as refusal:
        raise launch_refused(words=refusal.words, reason=refusal.reason, who=who, request=request) from None
    return Launch(user=user, role=role, platform=platform, link=link, deep_linking=claims.is_deep_linking(data))


NOT_TEACHING_YET_WORDS = (
    "This LMS course opens no Nestlab course yet, and your Nestlab account does not teach. A Nestlab "
    "instructor links it by opening it once from the LMS; an admin can make you an instructor."
)


def _account_for(*, platform: Platform, data: dict[str, Any], lms_role: roles.Role, linked: bool) -> AbstractBaseUser:
    """The person's account: found by the platform's subject; at a first launch a student account
    with the same e-mail from a platform trusted with e-mails, else a new one. An LMS teacher from
    an unlinked LMS course gets in only with an account that teaches in Nestlab already (an LMS
    role never makes a Nestlab instructor but of a course the LMS course is linked to)."""
    subject = claims.text(data.get("sub"))
    identity = Identity.objects.select_related("user").filter(platform=platform, subject=subject).first()
    person = _person_from(platform, data)
    claimed_email = claims.person(data)["email"]  # trusted or not, never beside a staff account's
    if identity is None:
        if claimed_email and accounts_selectors.staff_has_email(claimed_email):
            raise LaunchRefused(STAFF_EMAIL_WORDS, f"{platform.name}: its e-mail is a staff account's.")
        if lms_role == roles.Role.INSTRUCTOR and not linked:
            raise LaunchRefused(NOT_TEACHING_YET_WORDS, f"{platform.name}: an LMS teacher of an unlinked course.")
        try:
            with transaction.atomic():
                user = _existing_student(person["email"]) if person["email"] else None
                if user is None:
                    user = _new_account(person)
                identity = Identity.objects.create(platform=platform, subject=subject, user=user)
        except IntegrityError:
            # The same person's second first launch at once: the other one made the account.
            identity = Identity.objects.select_related("user").filter(platform=platform, subject=subject).first()
            if identity is None:
                raise LaunchRefused(
                    "Two launches arrived at once; open the activity again.",
                    f"{platform.name}: a first launch raced another.",
                ) from None
    else:
        if lms_role == roles.Role.INSTRUCTOR and not linked and not _teaches(identity.user):
            raise LaunchRefused(NOT_TEACHING_YET_WORDS, f"{platform.name}: an LMS teacher of an unlinked course.")
        _update_person(identity.user, person)
    identity.last_launch_at = timezone.now()
    identity.save(update_fields=["last_launch_at"])
    return identity.user


def _teaches(user: AbstractBaseUser) -> bool:
    return user.is_superuser or roles.is_admin(user) or roles.is_instructor(user)


def _person_from(platform: Platform, data: dict[str, Any]) -> dict[str, str]:
    """Name and e-mail to keep on the account. The e-mail only from a platform an admin trusts
    with e-mails (Moodle lets people edit theirs): an account's e-mail is what a school sign-in
    (OIDC, SAML) finds people by, so an LMS user must never be able to write someone else's."""
    person = claims.person(data)
    if not platform.trust_emails:
        person["email"] = ""
    return person


def _existing_student(email: str) -> AbstractBaseUser | None:
    """A student account with this e-mail (what a roster made) is the person's."""
    for user in User.objects.filter(email__iexact=email, is_active=True):
        if roles.primary_role(user) in (roles.Role.STUDENT, None) and not user.is_superuser:
            return user
    return None


def _update_person(user: AbstractBaseUser, person: dict[str, str]) -> None:
    """Copy the LMS's name (and trusted e-mail) to the account; an e-mail another account has,
    or a staff account's, is never taken."""
    changed = [field for field, value in person.items() if value and getattr(user, field) != value]
    if "email" in changed:
        taken = User.objects.filter(email__iexact=person["email"]).exclude(pk=user.pk).exists()
        if taken or accounts_selectors.staff_has_email(person["email"]):
            changed.remove("email")
    for field in changed:
        setattr(user, field, person[field])
    if changed:
        user.save(update_fields=changed)


def _free_username(wanted: str) -> str:
    base = re.sub(r"[^\w.@+-]", "", wanted)[:140] or "lti"
    candidate = base
    while User.objects.filter(username__iexact=candidate).exists():
        candidate = f"{base}-{secrets.token_hex(2)}"
    return candidate


def _new_account(person: dict[str, str]) -> AbstractBaseUser:
    """An account for a first launch: no usable password (the LMS signs them in)."""
    wanted = person["email"].split("@")[0] if person["email"] else "lti"
    user = User(username=_free_username(wanted), **person)
    user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    return user


def _role_apply(*, user: AbstractBaseUser, lms_role: roles.Role, link: CourseLink | None) -> roles.Role:
    """The role this launch acts in. An LMS never makes an admin and never lowers anyone: a
    teacher using the LMS's student view stays an instructor, and an admin stays one. An LMS
    teacher becomes a Nestlab instructor only from an LMS course linked to a Nestlab course
    (whose instructors link it): a sandbox course of their own makes no one an instructor."""
    current = roles.primary_role(user)
    if user.is_superuser or current == roles.Role.ADMIN:
        return roles.Role.ADMIN
    if current == roles.Role.INSTRUCTOR:
        return roles.Role.INSTRUCTOR
    if lms_role == roles.Role.INSTRUCTOR and link is not None:
        accounts_services.role_set(user=user, role=roles.Role.INSTRUCTOR, source="LMS (LTI)")
        return roles.Role.INSTRUCTOR
    if current is None:
        roles.role_grant(user=user, role=roles.Role.STUDENT)
    return roles.Role.STUDENT


# Course links


def _link_for(*, platform: Platform, data: dict[str, Any]) -> CourseLink | None:
    """The course a launch opens: the link named in the custom parameters (a deep link Nestlab
    made), if it belongs to this LMS course; else this LMS course's only link. A link's key copied
    into another LMS course (a course copy, a restore) never opens the first course from there:
    that course opens its own link, once its instructor has made one."""
    deployment_id = claims.deployment_id(data)
    context_id = claims.text(claims.context(data).get("id"))
    links = CourseLink.objects.select_related("course").filter(
        platform=platform, deployment_id=deployment_id, context_id=context_id
    )
    key = str(claims.custom(data).get(claims.LINK_PARAMETER, ""))
    if key:
        try:
            named = links.filter(key=key).first()
        except ValidationError:  # not a UUID
            named = None
        if named is not None:
            return named
    found = list(links[:2])
    return found[0] if len(found) == 1 else None


def _link_refresh(link: CourseLink, data: dict[str, Any]) -> None:
    """Keep the LMS's service addresses as its latest launch gives them (an address Nestlab
    cannot use is left out, never the reason a launch fails)."""
    nrps = claims.mapping(data.get(claims.NRPS))
    ags = claims.mapping(data.get(claims.AGS))
    context = claims.context(data)
    link.memberships_url = claims.url(nrps.get("context_memberships_url")) or link.memberships_url
    # The grade book's column list; Nestlab keeps one column of its own per course (made at the
    # first score), never the column of whichever activity launched last.
    link.lineitems_url = claims.url(ags.get("lineitems")) or link.lineitems_url
    scopes = ags.get("scope")
    if isinstance(scopes, list):
        link.ags_scopes = [scope for scope in scopes if isinstance(scope, str)][:20]
    link.context_title = (claims.text(context.get("title")) or claims.text(context.get("label")) or link.context_title)[
        :255
    ]
    save_valid(link)


def _course_join(*, link: CourseLink, user: AbstractBaseUser, role: roles.Role) -> None:
    """A learner launching from a linked LMS course is enrolled; an instructor of the LMS course
    teaches the Nestlab course."""
    course = link.course
    if role == roles.Role.STUDENT and course.state in (Course.State.OPEN, Course.State.DRAFT):
        LinkMember.objects.get_or_create(link=link, user=user)
        _, created = Enrollment.objects.get_or_create(
            course=course, student=user, defaults={"source": Enrollment.Source.LTI}
        )
        if created:
            _recorded(
                "course.enroll_from_lti",
                actor_username=user.get_username(),
                target=audit.describe(course),
                detail=f"{user.get_username()} enrolled in {course.code} by a launch from {link.platform.name}.",
            )
    elif role == roles.Role.INSTRUCTOR and not course.instructors.filter(pk=user.pk).exists():
        course.instructors.add(user)
        _recorded(
            "course.instructor_from_lti",
            actor_username=user.get_username(),
            target=audit.describe(course),
            detail=f"{user.get_username()} teaches {course.code}: an LMS instructor at {link.platform.name}.",
        )


@transaction.atomic
def course_link_create(
    *, platform: Platform, data: dict[str, Any], course: Course, actor: AbstractBaseUser
) -> CourseLink:
    """Link the LMS course of an instructor's launch to a Nestlab course they teach."""
    _require(
        course_permissions.can_manage_course(actor, course),
        "You can link an LMS course only to a Nestlab course you teach.",
    )
    context_id = claims.text(claims.context(data).get("id"))
    if not context_id:
        raise ValidationError("The LMS sent no course (context) with this launch, so there is nothing to link.")
    link, created = CourseLink.objects.get_or_create(
        platform=platform,
        deployment_id=claims.deployment_id(data),
        context_id=context_id,
        course=course,
        defaults={"created_by": actor},
    )
    _link_refresh(link, data)
    if created:
        _recorded(
            "lti.link_create",
            actor=actor,
            target=audit.describe(course),
            detail=f"Linked to {link.context_title or link.context_id} at {platform.name}.",
        )
    return link


@transaction.atomic
def course_link_delete(*, link: CourseLink, actor: AbstractBaseUser) -> None:
    _require(course_permissions.can_manage_course(actor, link.course), "Only this course's instructors can unlink it.")
    target = audit.describe(link.course)
    detail = f"Unlinked from {link.context_title or link.context_id} at {link.platform.name}."
    link.delete()
    _recorded("lti.link_delete", actor=actor, target=target, detail=detail)


# The roster from the LMS (Names and Role Provisioning Services)


@dataclass(frozen=True)
class RosterSync:
    """What a roster sync did: students enrolled, enrollments removed, members already enrolled,
    and members left out (an e-mail that is a staff account's: an admin links those by hand)."""

    enrolled: int
    removed: int
    unchanged: int
    skipped: int = 0

    def words(self) -> str:
        words = f"{self.enrolled} enrolled, {self.removed} removed, {self.unchanged} unchanged"
        return words + (f", {self.skipped} skipped (their e-mail is a staff account's)." if self.skipped else ".")


def _connector(platform: Platform) -> ServiceConnector:
    return ServiceConnector(registration_of(platform), requests_session=LmsSession())


def _service_failed(link: CourseLink, what: str, error: Exception) -> ValidationError:
    return ValidationError(f"{link.platform.name} refused or did not answer the {what}: {error}")


def roster_sync(*, link: CourseLink, actor: AbstractBaseUser | None = None) -> RosterSync:
    """Make the course's LMS-made enrollments follow the LMS's roster: active learners are
    enrolled (their accounts made as at a first launch), learners who left or are inactive
    are taken off. Enrollments made in Nestlab (by hand, CSV, join code) are never touched.
    ``actor`` None is the schedule."""
    if actor is not None:
        _require(
            course_permissions.can_manage_course(actor, link.course),
            "Only this course's instructors can sync its roster.",
        )
    if not link.memberships_url:
        raise ValidationError(
            f"{link.platform.name} offers no roster service for this course (Names and Role Provisioning)."
        )
    service = NamesRolesProvisioningService(
        _connector(link.platform), {"context_memberships_url": link.memberships_url}
    )
    try:
        members = service.get_members()
    except (LtiException, LtiServiceException, RequestException, ValueError) as error:
        failure = _service_failed(link, "roster request", error)
        _sync_recorded(link, actor, failure.messages[0], audit.Result.FAILED)
        raise failure from error
    result = _roster_apply(link, members)
    _sync_recorded(link, actor, result.words(), audit.Result.SUCCEEDED)
    return result


@transaction.atomic
def _roster_apply(link: CourseLink, members: list[dict[str, Any]]) -> RosterSync:
    listed: set[int] = set()
    enrolled = unchanged = skipped = 0
    for member in members:
        if claims.nestlab_role(member.get("roles", [])) != roles.Role.STUDENT:
            continue
        if member.get("status", "Active") != "Active":
            continue
        user = _member_account(link.platform, member)
        if user is None:
            skipped += 1
            continue
        listed.add(user.pk)
        _, created = Enrollment.objects.get_or_create(
            course=link.course, student=user, defaults={"source": Enrollment.Source.LTI}
        )
        enrolled += created
        unchanged += not created
    LinkMember.objects.filter(link=link).exclude(user_id__in=listed).delete()
    LinkMember.objects.bulk_create(
        [LinkMember(link=link, user_id=user_id) for user_id in listed], ignore_conflicts=True
    )
    # An LMS-made enrollment stays while any LMS course linked to this course lists the student.
    still_listed = LinkMember.objects.filter(link__course=link.course).values("user_id")
    gone = list(
        Enrollment.objects.filter(course=link.course, source=Enrollment.Source.LTI).exclude(student_id__in=still_listed)
    )
    for enrollment in gone:
        enrollment.delete()
    if gone:
        transaction.on_commit(lambda: realtime.access_changed([enrollment.student_id for enrollment in gone]))
    return RosterSync(enrolled=enrolled, removed=len(gone), unchanged=unchanged, skipped=skipped)


def _member_account(platform: Platform, member: dict[str, Any]) -> AbstractBaseUser | None:
    subject = claims.text(member.get("user_id"))
    if not subject or len(subject) > claims.MAX_IDENTIFIER:
        return None
    identity = Identity.objects.select_related("user").filter(platform=platform, subject=subject).first()
    person = claims.person(member)
    staff_email = bool(person["email"]) and accounts_selectors.staff_has_email(person["email"])
    if not platform.trust_emails:
        person["email"] = ""
    if identity is not None:
        _update_person(identity.user, person)
        return identity.user if roles.primary_role(identity.user) == roles.Role.STUDENT else None
    if staff_email:
        return None  # never next to a staff account's e-mail (counted as skipped)
    user = _existing_student(person["email"]) if person["email"] else None
    if user is None:
        user = _new_account(person)
    if roles.primary_role(user) is None:
        roles.role_grant(user=user, role=roles.Role.STUDENT)
    Identity.objects.create(platform=platform, subject=subject, user=user)
    return user


def _sync_recorded(link: CourseLink, actor, words: str, result: str) -> None:
    link.roster_synced_at = timezone.now()
    link.roster_sync_result = words[:500]
    link.save(update_fields=["roster_synced_at", "roster_sync_result"])
    _recorded(
        "lti.roster_sync",
        result=result,
        actor=actor,
        target=audit.describe(link.course),
        detail=f"Roster from {link.platform.name}: {words}",
    )


def roster_sync_all() -> int:
    """The schedule's sync of every link that has a roster service; returns how many were synced."""
    synced = 0
    for link in (
        CourseLink.objects.select_related("platform", "course")
        .filter(platform__is_active=True, course__state__in=[Course.State.OPEN, Course.State.DRAFT])
        .exclude(memberships_url="")
    ):
        try:
            roster_sync(link=link)
            synced += 1
        except ValidationError:
            continue  # recorded on the link and in the audit log
    return synced


# Scores to the LMS grade book (Assignment and Grade Services)

LINE_ITEM_TAG = "nestlab"


def score_send(
    *,
    link: CourseLink,
    student: AbstractBaseUser,
    score_given: float,
    score_maximum: float,
    comment: str = "",
    actor: AbstractBaseUser | None = None,
) -> str:
    """Send a student's score to the LMS grade book column of this link (made on first use);
    returns the column's address. ``actor`` None is Nestlab itself (e.g. a graded check)."""
    if actor is not None:
        _require(
            course_permissions.can_manage_course(actor, link.course), "Only this course's instructors can send scores."
        )
    if not (0 <= score_given <= score_maximum) or score_maximum <= 0:
        raise ValidationError("A score is between 0 and its maximum, and the maximum is above 0.")
    if len(comment) > 1000:
        raise ValidationError("A score's comment has at most 1000 characters.")
    if not link.lineitems_url:
        raise ValidationError(
            f"{link.platform.name} offers no grade book for this course (Assignment and Grade Services)."
        )
    identity = Identity.objects.filter(platform=link.platform, user=student).first()
    if identity is None:
        raise ValidationError(
            f"{student.get_username()} has never opened Nestlab from {link.platform.name}, "
            "so the LMS does not know them here."
        )
    service = AssignmentsGradesService(
        _connector(link.platform),
        {"scope": link.ags_scopes, "lineitems": link.lineitems_url},
    )
    grade = (
        Grade()
        .set_score_given(score_given)
        .set_score_maximum(score_maximum)
        .set_user_id(identity.subject)
        .set_timestamp(timezone.now().isoformat())
        .set_activity_progress("Completed")
        .set_grading_progress("FullyGraded")
    )
    if comment:
        grade.set_comment(comment)
    try:
        if not link.lineitem_url:
            item = (
                LineItem()
                .set_tag(LINE_ITEM_TAG)
                .set_resource_id(f"nestlab-course-{link.course_id}")
                .set_label(f"Nestlab: {link.course.title}"[:255])
                .set_score_maximum(score_maximum)
            )
            link.lineitem_url = service.find_or_create_lineitem(item, find_by="resource_id").get_id()
            link.save(update_fields=["lineitem_url"])
        column = link.lineitem_url
        service.put_grade(grade, LineItem().set_id(column))
    except (LtiException, LtiServiceException, RequestException, ValueError) as error:
        raise _service_failed(link, "score", error) from error
    _recorded(
        "lti.score_send",
        actor=actor,
        target=audit.describe(link.course),
        detail=f"{student.get_username()}: {score_given:g}/{score_maximum:g} to {link.platform.name}.",
    )
    return column
