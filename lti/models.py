"""LTI 1.3 / LTI Advantage: Nestlab as a tool that a Moodle or Canvas course adds.

An admin registers each LMS (a *platform*: its issuer, the client id it gave Nestlab, its
endpoints and deployment ids). A launch from a platform signs the person in; an instructor links
an LMS course (its *context*) to a Nestlab course (by Deep Linking or on the first launch), and
that link carries the LMS's roster and grade-book services. Nestlab signs its own messages (deep
linking answers, service tokens) with its *tool keys*, published at /lti/jwks/.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models

from core import crypto

MAX_DEPLOYMENT_IDS = 50
MAX_DEPLOYMENT_ID_LENGTH = 255
http_url = URLValidator(schemes=["http", "https"])


def validate_deployment_ids(value) -> None:
    """A list of 1..50 non-empty strings of at most 255 characters, none twice."""
    if not isinstance(value, list) or not value:
        raise ValidationError("Give at least one deployment id (the LMS shows it when the tool is added).")
    if len(value) > MAX_DEPLOYMENT_IDS:
        raise ValidationError(f"At most {MAX_DEPLOYMENT_IDS} deployment ids.")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ValidationError("Each deployment id is a non-empty text.")
        if len(item) > MAX_DEPLOYMENT_ID_LENGTH:
            raise ValidationError(f"A deployment id has at most {MAX_DEPLOYMENT_ID_LENGTH} characters.")
    if len(set(value)) != len(value):
        raise ValidationError("A deployment id is listed twice.")


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


MAX_FRAME_ORIGINS = 20


def validate_frame_origins(value) -> None:
    """A list of at most 20 origins (scheme and host, e.g. https://school.instructure.com)."""
    if not isinstance(value, list):
        raise ValidationError('Give a list of origins, e.g. ["https://school.instructure.com"].')
    if len(value) > MAX_FRAME_ORIGINS:
        raise ValidationError(f"At most {MAX_FRAME_ORIGINS} origins.")
    for item in value:
        if not isinstance(item, str) or len(item) > 255:
            raise ValidationError("Each origin is a text of at most 255 characters.")
        http_url(item)
        if origin_of(item) != item.rstrip("/"):
            raise ValidationError(f"{item} is not an origin: give only the scheme and host, without a path.")


class Platform(models.Model):
    """An LMS (Moodle, Canvas, ...) that launches Nestlab, registered by an admin with the values
    the LMS shows when the tool is added. Only active platforms launch; pages may be framed by an
    active platform's origin (an LMS shows tools in an iframe)."""

    name = models.CharField(max_length=100, unique=True, help_text="How Nestlab names this LMS, e.g. Moodle.")
    issuer = models.CharField(
        max_length=255, validators=[http_url], help_text="The platform's issuer (iss), e.g. https://moodle.school.edu"
    )
    client_id = models.CharField(max_length=255, help_text="The client id the platform gave Nestlab.")
    deployment_ids = models.JSONField(
        default=list,
        validators=[validate_deployment_ids],
        help_text="The deployment ids of this tool on the platform (a list).",
    )
    auth_login_url = models.CharField(
        max_length=1024, validators=[http_url], help_text="The platform's OIDC authentication request URL."
    )
    auth_token_url = models.CharField(
        max_length=1024, validators=[http_url], help_text="The platform's OAuth 2 access token URL (services)."
    )
    auth_audience = models.CharField(
        max_length=1024, blank=True, help_text="The audience of Nestlab's token requests, if not the token URL."
    )
    key_set_url = models.CharField(
        max_length=1024, validators=[http_url], help_text="The platform's public key set (JWKS) URL."
    )
    frame_origins = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_frame_origins],
        help_text="More origins that show Nestlab in a frame, when the LMS's pages are not at its issuer's "
        "(hosted Canvas: https://<school>.instructure.com).",
    )
    trust_emails = models.BooleanField(
        default=False,
        help_text="A first launch reaches an existing student account with the same e-mail. Only for an LMS "
        "whose users cannot change their own e-mail address.",
    )
    is_active = models.BooleanField(default=True, help_text="Inactive platforms launch nothing.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["issuer", "client_id"], name="lti_platform_issuer_client_unique")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def origins(self) -> list[str]:
        """Where the LMS's pages come from: the origins allowed to frame Nestlab's."""
        return [origin_of(self.issuer), *(origin.rstrip("/") for origin in self.frame_origins)]


class ToolKey(models.Model):
    """One of Nestlab's own RSA keys for LTI: the newest active one signs; every active one is
    published in the JWKS (a key is retired, not deleted, so platforms holding it in cache can
    still check what it signed). The private key is encrypted like every stored secret."""

    kid = models.CharField(max_length=64, unique=True)
    private_key_ciphertext = models.TextField(editable=False)
    public_key_pem = models.TextField(editable=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.kid

    @property
    def private_key_pem(self) -> str:
        return crypto.decrypt(self.private_key_ciphertext)


class Identity(models.Model):
    """Who a platform's user (its ``sub``) is in Nestlab: found again at every launch, so a
    changed e-mail address in the LMS never moves a person to another account."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="identities")
    subject = models.CharField(max_length=255)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lti_identities")
    created_at = models.DateTimeField(auto_now_add=True)
    last_launch_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "subject"], name="lti_identity_platform_subject_unique")
        ]

    def __str__(self) -> str:
        return f"{self.platform} {self.subject}"


class CourseLink(models.Model):
    """An LMS course (a platform's context, in one deployment) linked to a Nestlab course by one
    of its instructors: learners launching from it are enrolled there, the roster comes from the
    LMS's Names and Role service, and scores go to its grade book. ``key`` goes into the deep
    link's custom parameters, so a link copied into another LMS course is refused."""

    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="course_links")
    deployment_id = models.CharField(max_length=MAX_DEPLOYMENT_ID_LENGTH)
    context_id = models.CharField(max_length=255)
    context_title = models.CharField(max_length=255, blank=True)
    course = models.ForeignKey("courses.Course", on_delete=models.CASCADE, related_name="lti_links")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    memberships_url = models.CharField(
        max_length=1024, blank=True, validators=[http_url], help_text="The LMS's roster service (NRPS), if offered."
    )
    lineitems_url = models.CharField(
        max_length=1024, blank=True, validators=[http_url], help_text="The LMS's grade book (AGS), if offered."
    )
    lineitem_url = models.CharField(
        max_length=1024,
        blank=True,
        validators=[http_url],
        help_text="Nestlab's grade column for this course in the LMS, made at the first score.",
    )
    ags_scopes = models.JSONField(default=list, blank=True)
    roster_synced_at = models.DateTimeField(null=True, blank=True)
    roster_sync_result = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["platform__name", "context_title", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "deployment_id", "context_id", "course"], name="lti_link_context_course_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.context_title or self.context_id} → {self.course_id}"


class LinkMember(models.Model):
    """A learner the LMS lists in a linked course (its roster, or their own launch from it). An
    LMS-made enrollment stays while any of the course's links lists the student, so two LMS
    courses linked to one Nestlab course never take each other's students off."""

    link = models.ForeignKey(CourseLink, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["link", "user"], name="lti_link_member_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.link_id}"


class UsedNonce(models.Model):
    """A launch's nonce, kept until its token expires: the same launch posted twice is refused."""

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="+")
    nonce = models.CharField(max_length=255)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["platform", "nonce"], name="lti_nonce_platform_unique")]

    def __str__(self) -> str:
        return self.nonce
