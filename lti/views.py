"""The LTI 1.3 tool's pages: login initiation, launch, Nestlab's key set, and the instructor's
choice of the Nestlab course an LMS course opens (by Deep Linking or at a first launch).

Launches come from another site (the LMS), so the login and launch routes take no CSRF token:
their proof is the platform's signature, the state and nonce of pylti1p3's login, and our
one-use nonce record (lti.services.nonce_use)."""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as sign_in
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from pylti1p3.contrib.django import DjangoMessageLaunch, DjangoOIDCLogin
from pylti1p3.contrib.django.launch_data_storage.cache import DjangoCacheDataStorage
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.exception import LtiException

from core import roles
from core.web import refusal_message
from courses import permissions as course_permissions
from courses import selectors as course_selectors
from courses.models import Course
from lti import claims, keys, selectors, services
from lti.http import LmsSession
from lti.models import CourseLink, origin_of
from lti.tool_config import PlatformToolConf, platform_for

logger = logging.getLogger(__name__)

LAUNCH_SESSION_KEY = "lti_launch_id"
# An origin as it may stand in a CSP directive: nothing that could end the directive.
SAFE_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")
SESSION_BACKEND = "accounts.identity_providers.IdentityProviderSessionBackend"  # checks no password; keeps the session
LAUNCH_FAILED_WORDS = "Your LMS's launch could not be checked, so Nestlab did not sign you in"


# A platform's public keys are fetched at most this often (a class launching at once asks once).
KEY_SET_CACHE_SECONDS = 300


def _storage() -> DjangoCacheDataStorage:
    """Login state and launches in the shared cache (Redis), not the session: the launch is a
    post from the LMS's site, which brings no SameSite=Lax session cookie."""
    return DjangoCacheDataStorage(cache_name="lti")


class NestlabMessageLaunch(DjangoMessageLaunch):
    """pylti1p3's launch, with the login's state always looked up on the server, calls to the LMS
    bounded in time and its keys cached. Over HTTPS the state cookie must come too (pylti1p3's
    check, SameSite=None); over plain HTTP, where browsers drop such cookies on a cross-site post,
    the server-side state alone binds it, but only where NESTLAB_LTI_PLAIN_HTTP allows (never in
    production: a proxy that forgets X-Forwarded-Proto must not weaken the check)."""

    def __init__(self, request, tool_config, **kwargs):
        kwargs["requests_session"] = kwargs.get("requests_session") or LmsSession()
        super().__init__(request, tool_config, **kwargs)
        self.set_public_key_caching(_storage(), KEY_SET_CACHE_SECONDS)

    def validate_state(self):
        state = self._get_request_param("state")
        if not state or self._session_service.get_state_params(state) is None:
            raise LtiException("The login state is unknown or expired: open the activity again from your LMS.")
        if self._request.is_secure() or not settings.NESTLAB_LTI_PLAIN_HTTP:
            return super().validate_state()
        return self


def _refused(request: HttpRequest, words: str, status: int = 403) -> HttpResponse:
    return render(request, "core/forbidden.html", {"message": words}, status=status)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    """Third-party login initiation: the LMS sends the browser here, Nestlab sends it on to the
    LMS's authentication endpoint with a state and a nonce, and the LMS posts the launch back."""
    params = request.POST if request.method == "POST" else request.GET
    issuer, client_id = params.get("iss", ""), params.get("client_id") or None
    if platform_for(issuer, client_id) is None:
        services.launch_refused(
            words="", reason=f"A login from an unknown LMS: {issuer[:200]} (client {client_id}).", request=request
        )
        return _refused(
            request, "This LMS is not registered with Nestlab. Ask a Nestlab admin to register it.", status=400
        )
    oidc = DjangoOIDCLogin(request, PlatformToolConf(), launch_data_storage=_storage())
    # Remembered with the state: the launch must come back to the login that started it.
    oidc.pass_params_to_launch({"issuer": issuer})
    try:
        return oidc.redirect(request.build_absolute_uri(reverse("lti:launch")))
    except LtiException as error:
        services.launch_refused(words="", reason=f"A login refused: {error}", request=request)
        return _refused(request, f"{LAUNCH_FAILED_WORDS}: {error}", status=400)


@csrf_exempt
@require_POST
def launch(request: HttpRequest) -> HttpResponse:
    """The LMS's signed launch: checked, then the person is signed in and sent to their lab, the
    class table, or the page that links the LMS course to a Nestlab course."""
    try:
        # Over HTTPS the constructor already needs the browser's session cookie of the login.
        message = NestlabMessageLaunch(request, PlatformToolConf(), launch_data_storage=_storage())
        data = message.get_launch_data()
    except LtiException as error:
        services.launch_refused(words="", reason=f"A launch refused: {error}", request=request)
        return _refused(request, f"{LAUNCH_FAILED_WORDS}: {error}")
    platform = platform_for(data["iss"], message.get_client_id())
    try:
        accepted = services.launch_accept(platform=platform, data=data, request=request)
    except services.LaunchRefused as refusal:
        return _refused(request, refusal.words)
    sign_in(request, accepted.user, backend=SESSION_BACKEND)
    request.session[LAUNCH_SESSION_KEY] = message.get_launch_id()
    if accepted.deep_linking:  # never a student's: launch_accept refuses those
        return redirect("lti:deep-link")
    if accepted.link is None:
        if accepted.role == roles.Role.STUDENT:
            return _refused(request, services.NOT_LINKED_WORDS, status=409)
        return redirect("lti:link-course")
    if accepted.role == roles.Role.STUDENT:
        return redirect("labs:course-lab", accepted.link.course_id)
    return redirect("labs:class-labs", accepted.link.course_id)


@require_GET
def jwks(request: HttpRequest) -> JsonResponse:
    """Nestlab's public keys, for the LMS to check what Nestlab signs."""
    return JsonResponse(keys.public_key_set())


NO_LAUNCH_WORDS = (
    "No launch from your LMS is waiting here (it may have expired): open the activity again from your LMS."
)


def _saved_launch(request: HttpRequest) -> DjangoMessageLaunch | None:
    """The launch this browser came in with (kept by pylti1p3 in the shared cache), or None."""
    launch_id = request.session.get(LAUNCH_SESSION_KEY)
    if not launch_id:
        return None
    try:
        message = NestlabMessageLaunch.from_cache(
            launch_id, request, PlatformToolConf(), launch_data_storage=_storage()
        )
    except LtiException:  # over HTTPS: the login's session cookie is gone
        return None
    return message if message.get_launch_data() else None


def _manageable_courses(request: HttpRequest):
    return [
        course
        for course in course_selectors.course_list(user=request.user).exclude(state=Course.State.ARCHIVED)
        if course_permissions.can_manage_course(request.user, course)
    ]


def _choose(request: HttpRequest, *, deep_linking: bool) -> tuple[DjangoMessageLaunch, HttpResponse | CourseLink]:
    """The course chooser both flows share: its page (or its refusal), or the chosen course's link."""
    message = _saved_launch(request)
    if message is None or deep_linking != claims.is_deep_linking(message.get_launch_data()):
        return message, render(request, "lti/no_launch.html", {"message": NO_LAUNCH_WORDS}, status=400)
    data = message.get_launch_data()
    context = claims.context(data)
    page = {"context": context, "courses": _manageable_courses(request), "deep_linking": deep_linking}
    if request.method != "POST":
        return message, render(request, "lti/choose_course.html", page)
    course = get_object_or_404(Course, pk=request.POST.get("course") or 0)
    platform = platform_for(data["iss"], message.get_client_id())
    try:
        link = services.course_link_create(platform=platform, data=data, course=course, actor=request.user)
    except (PermissionDenied, ValidationError) as refusal:
        page["error"] = refusal_message(request, refusal)
        return message, render(request, "lti/choose_course.html", page, status=400)
    return message, link


@login_required
@require_http_methods(["GET", "POST"])
def deep_link(request: HttpRequest) -> HttpResponse:
    """An instructor adding Nestlab in the LMS picks the course; the LMS gets a link that opens it."""
    message, chosen = _choose(request, deep_linking=True)
    if not isinstance(chosen, CourseLink):
        return chosen
    link = chosen
    resource = (
        DeepLinkResource()
        .set_url(request.build_absolute_uri(reverse("lti:launch")))
        .set_title(f"Nestlab: {link.course.title}"[:255])
        .set_custom_params({claims.LINK_PARAMETER: str(link.key)})
    )
    return_url = str(message.get_launch_data().get(claims.DEEP_LINKING_SETTINGS, {}).get("deep_link_return_url", ""))
    if not return_url.startswith(("https://", "http://")):
        return _refused(request, "Your LMS gave no address to send the link back to.", status=400)
    response = render(
        request,
        "lti/deep_link_return.html",
        {"return_url": return_url, "jwt": message.get_deep_link().get_response_jwt([resource]), "course": link.course},
    )
    # The answer is a form posted to the LMS: this page, and only it, may post there.
    origin = origin_of(return_url)
    if not SAFE_ORIGIN.fullmatch(origin):
        return _refused(request, "Your LMS gave an address Nestlab will not send the link back to.", status=400)
    response._csp_update = {"form-action": [origin]}
    return response


@login_required
@require_http_methods(["GET", "POST"])
def link_course(request: HttpRequest) -> HttpResponse:
    """An instructor's first launch from an LMS course no Nestlab course is linked to: pick one."""
    _, chosen = _choose(request, deep_linking=False)
    if not isinstance(chosen, CourseLink):
        return chosen
    link = chosen
    messages.success(request, f"{link.context_title or 'The LMS course'} now opens {link.course.title}.")
    return redirect("labs:class-labs", link.course_id)


@login_required
@require_GET
def course_links(request: HttpRequest, course_id: int) -> HttpResponse:
    """The LMS courses linked to a Nestlab course, with their roster syncs."""
    course = get_object_or_404(Course, pk=course_id)
    if not course_permissions.can_manage_course(request.user, course):
        raise Http404("No such course.")
    return render(request, "lti/course_links.html", {"course": course, "links": selectors.course_links(course=course)})


@login_required
@require_POST
def link_delete(request: HttpRequest, link_id: int) -> HttpResponse:
    """Unlink an LMS course: its launches open nothing until an instructor links it again."""
    link = selectors.course_link(link_id=link_id, user=request.user)
    course_id = link.course_id
    try:
        services.course_link_delete(link=link, actor=request.user)
    except PermissionDenied as refusal:
        messages.error(request, refusal_message(request, refusal))
    else:
        messages.success(request, f"{link.context_title or link.context_id} at {link.platform.name} is unlinked.")
    return redirect("lti:course-links", course_id)


@login_required
@require_POST
def roster_sync(request: HttpRequest, link_id: int) -> HttpResponse:
    link = selectors.course_link(link_id=link_id, user=request.user)
    try:
        result = services.roster_sync(link=link, actor=request.user)
    except (PermissionDenied, ValidationError) as refusal:
        messages.error(request, f"The roster was not synced. {refusal_message(request, refusal)}")
    else:
        messages.success(request, f"Roster from {link.platform.name}: {result.words()}")
    return redirect("lti:course-links", link.course_id)
