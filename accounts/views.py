"""Pages of the accounts app: everyone's accounts for admins, and adding an instructor.

Thin: the form parses, accounts.services decides and writes (the API's instructors route calls
the same service)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts import forms, permissions, services
from core import roles
from core.web import add_errors, forbidden

User = get_user_model()


def _role_names(user) -> list[str]:
    by_group = {name: role.value for role, name in roles.GROUP_NAMES.items()}
    held = {by_group[group.name] for group in user.groups.all() if group.name in by_group}
    if user.is_superuser:
        held.add(roles.Role.ADMIN.value)
    return [role.value for role in roles.PRECEDENCE if role.value in held]


@login_required
def people(request: HttpRequest) -> HttpResponse:
    if not permissions.can_create_instructors(request.user):
        return forbidden(request, "Only admins can see everyone's accounts.")
    form = forms.InstructorForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            instructor = services.instructor_create(actor=request.user, **form.cleaned_data)
        except PermissionDenied as refusal:
            return forbidden(request, refusal)
        except ValidationError as error:
            add_errors(form, error)
        else:
            messages.success(request, f"{instructor.username} is an instructor now and can log in.")
            return redirect("accounts:people")

    role = request.GET.get("role", "")
    query = request.GET.get("q", "").strip()
    users = User.objects.prefetch_related("groups").order_by("username")
    if role in roles.GROUP_NAMES:
        in_group = Q(groups__name=roles.GROUP_NAMES[role])
        users = users.filter(in_group | Q(is_superuser=True) if role == roles.Role.ADMIN else in_group)
    if query:
        users = users.filter(
            Q(username__icontains=query)
            | Q(first_name__icontains=query)
            | Q(last_name__icontains=query)
            | Q(email__icontains=query)
        )
    page = Paginator(users.distinct(), 100).get_page(request.GET.get("page"))
    rows = [(person, _role_names(person)) for person in page]
    return render(
        request,
        "accounts/people.html",
        {"form": form, "rows": rows, "page": page, "role": role, "query": query, "roles": list(roles.Role)},
    )
