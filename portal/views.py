"""Pages of the project itself: the home page of each role."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults

from courses import selectors as course_selectors
from courses.forms import JoinForm
from portal import roles


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Each role lands on its own overview."""
    role = roles.primary_role(request.user)
    if role == roles.Role.ADMIN:
        return render(
            request,
            "portal/home_admin.html",
            {
                "endpoints": course_selectors.endpoint_list(),
                "courses": course_selectors.course_list(user=request.user).exclude(state="archived")[:20],
                "people": _people_counts(),
                "operations": _recent_operations(request),
            },
        )
    if role == roles.Role.INSTRUCTOR:
        return render(
            request,
            "portal/home_instructor.html",
            {
                "courses": course_selectors.course_list(user=request.user).exclude(state="archived"),
                "templates": course_selectors.template_list(user=request.user).filter(owners=request.user),
                "operations": _recent_operations(request),
            },
        )
    if role == roles.Role.STUDENT:
        courses = course_selectors.course_list(user=request.user).prefetch_related("instructors")
        return render(request, "portal/home_student.html", {"courses": courses, "form": JoinForm()})
    return render(request, "portal/home_no_role.html", {}, status=403)


def _people_counts() -> dict[str, int]:
    counts = {
        role.value: Count("pk", filter=Q(groups__name=name), distinct=True) for role, name in roles.GROUP_NAMES.items()
    }
    return get_user_model().objects.aggregate(**counts)


def _recent_operations(request: HttpRequest):
    # Imported here: portal sits above both apps, and the labs app is optional for pages
    # that do not show operations.
    from labs.selectors import operation_list

    return operation_list(user=request.user)[:10]


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for load balancers and the supervisor: the process answers and the DB too."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")


def server_error(request: HttpRequest) -> HttpResponse:
    """A failure nobody handled (a bug, the database refusing connections): the API answers
    in its own error shape, as JSON clients expect (docs/api.md); pages get Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"detail": "The server failed to answer this request. Try again; if it keeps failing, tell an admin."},
            status=500,
        )
    return defaults.server_error(request)
