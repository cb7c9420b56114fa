"""Pages of the project itself: the home page of each role, and the audit log."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import requires_csrf_token
from django.views.defaults import bad_request as django_bad_request
from django.views.defaults import page_not_found
from django.views.defaults import server_error as django_server_error

from accounts.selectors import people_counts
from core import audit, roles
from core.models import AuditEntry
from core.web import FORBIDDEN_TEMPLATE, forbidden
from courses import selectors as course_selectors
from courses.forms import JoinForm
from labs.selectors import class_summaries, endpoint_load_list, operation_list
from portal.forms import AuditFilterForm


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Each role lands on its own overview."""
    role = roles.primary_role(request.user)
    if role == roles.Role.ADMIN:
        return render(
            request,
            "portal/home_admin.html",
            {
                "endpoint_loads": endpoint_load_list(),
                "courses": course_selectors.course_list(user=request.user).exclude(state="archived")[:20],
                "people": people_counts(),
                "operations": _recent_operations(request),
            },
        )
    if role == roles.Role.INSTRUCTOR:
        courses = list(course_selectors.course_list(user=request.user).exclude(state="archived"))
        summaries = class_summaries([course.pk for course in courses])
        for course in courses:
            course.summary = summaries[course.pk]
        return render(
            request,
            "portal/home_instructor.html",
            {
                "courses": courses,
                "templates": course_selectors.template_list(user=request.user).filter(owners=request.user),
                "operations": _recent_operations(request),
            },
        )
    if role == roles.Role.STUDENT:
        courses = course_selectors.course_list(user=request.user).prefetch_related("instructors")
        return render(request, "portal/home_student.html", {"courses": courses, "form": JoinForm()})
    return render(request, "portal/home_no_role.html", {}, status=403)


def _recent_operations(request: HttpRequest):
    return operation_list(user=request.user)[:10]


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for load balancers and the supervisor: the process answers and the DB too."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")


# The audit log (admins)

AUDIT_PAGE_SIZE = 50


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    """Every login, refusal and operation, newest first, filtered; the export link keeps the filters."""
    if not roles.is_admin(request.user):
        return forbidden(request, "Only admins read the audit log.")
    form = AuditFilterForm(request.GET)
    entries = audit.audit_entry_list(**form.filters()) if form.is_valid() else AuditEntry.objects.none()
    page = Paginator(entries, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "portal/audit_log.html",
        {"form": form, "page": page, "query": query.urlencode(), "filtered": any(query.values())},
    )


@login_required
def audit_export(request: HttpRequest) -> HttpResponse:
    """The filtered entries (all pages) as a CSV download, streamed."""
    if not roles.is_admin(request.user):
        return forbidden(request, "Only admins export the audit log.")
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        words = " ".join(message for messages in form.errors.values() for message in messages)
        return HttpResponse(f"Not exported: {words}", status=400, content_type="text/plain; charset=utf-8")
    return audit.csv_response(request, audit.audit_entry_list(**form.filters()))


# Errors Django answers itself


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A request Django itself refuses before any view (too many fields, too large a body,
    a bad header): under /api/ in the API's error shape, elsewhere Django's page."""
    if not request.path.startswith("/api/"):
        return django_bad_request(request, exception)
    if isinstance(exception, TooManyFieldsSent):
        detail = f"The request has too many fields: at most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS}."
    elif isinstance(exception, RequestDataTooBig):
        detail = f"The request body is too large: at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
    else:
        detail = "The request was refused as malformed."
    return JsonResponse({"detail": detail}, status=400)


def server_error(request: HttpRequest) -> HttpResponse:
    """An unexpected error (logged with its traceback): under /api/ in the API's error shape."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Something went wrong on the server; it was logged."}, status=500)
    return django_server_error(request)


# A refusal nothing turned into words: allauth's (a sign-in's state that is missing, used or
# stale, e.g. a replayed SAML answer) and Django's CSRF check. Ours carry their words.
SIGN_IN_REFUSED_WORDS = (
    "This sign-in could not go on: it was started in another window, was used already, or took too "
    "long. Start again from the sign-in page."
)
CSRF_PAGE_WORDS = (
    "The form was out of date (it was opened before you signed in or out, or your browser did not "
    "send Nestlab's cookie). Nothing was changed: go back, reload the page and try again."
)
CSRF_API_WORDS = (
    "A request signed in by session needs the X-CSRFToken header with the csrftoken cookie's value; "
    "scripts should use an API key instead (docs/api.md). Nothing was changed."
)


@requires_csrf_token
def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A PermissionDenied no view answered itself: its words (ours always have some), under
    /api/ in the API's error shape, elsewhere the product's 403 page. The audit middleware
    has recorded it already."""
    words = str(exception) or (
        SIGN_IN_REFUSED_WORDS if request.path.startswith(("/accounts/", "/login/")) else audit.NOT_ALLOWED_WORDS
    )
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": words}, status=403)
    return render(request, FORBIDDEN_TEMPLATE, {"message": words}, status=403)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's CSRF check refused a form post (settings.CSRF_FAILURE_VIEW): what to do, in
    words, instead of Django's page about cookies and Referer headers."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": CSRF_API_WORDS}, status=403)
    return render(request, FORBIDDEN_TEMPLATE, {"message": CSRF_PAGE_WORDS}, status=403)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A URL nothing answers: under /api/ in the API's error shape (docs/api.md: every error is
    JSON, e.g. ``/api/v1/labs/-1/``), elsewhere Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"detail": "Nothing answers at this address; the API's routes are at /api/docs/."}, status=404
        )
    return page_not_found(request, exception)
