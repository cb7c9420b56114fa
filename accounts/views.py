"""Pages of the accounts app: everyone's accounts for admins, adding an instructor, and each
person's own account (password change and reset, API keys).

Thin: the form parses, accounts.services decides and writes (the API's instructors route calls
the same service)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.http import require_POST

from accounts import forms, permissions, selectors, services
from accounts.models import API_KEYS_PER_PERSON, ApiKey
from core import roles
from core.web import add_errors, forbidden

NO_PASSWORD_WORDS = (
    "You sign in through your school (its directory, its sign-in page or your LMS), which keeps your "
    "password: Nestlab has none for you to change. Change it where your school says."
)

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


# The person's own account


def _account_page(request: HttpRequest, *, form: forms.ApiKeyForm | None = None, new_key: str = "", status=200):
    return render(
        request,
        "accounts/account.html",
        {
            "roles": _role_names(request.user),
            "keys": selectors.api_keys_of(request.user),
            "form": form or forms.ApiKeyForm(),
            "new_key": new_key,
            "keys_max": API_KEYS_PER_PERSON,
            "no_password_words": NO_PASSWORD_WORDS,
        },
        status=status,
    )


@login_required
def account(request: HttpRequest) -> HttpResponse:
    """Who you are, your password, and your API keys."""
    return _account_page(request)


@login_required
@require_POST
def api_key_create(request: HttpRequest) -> HttpResponse:
    """A new API key, shown on the page this once (only its digest is kept)."""
    form = forms.ApiKeyForm(request.POST)
    if form.is_valid():
        try:
            _key, secret = services.api_key_create(user=request.user, name=form.cleaned_data["name"], request=request)
        except ValidationError as error:
            add_errors(form, error)
        else:
            return _account_page(request, new_key=secret)
    return _account_page(request, form=form, status=400)


@login_required
@require_POST
def api_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    key = get_object_or_404(ApiKey, pk=key_id, user=request.user)  # someone else's key does not exist here
    services.api_key_revoke(key=key, actor=request.user, request=request)
    messages.success(request, f"The API key “{key.name}” is revoked: requests sending it are refused from now on.")
    return redirect("accounts:account")


class SignInView(auth_views.LoginView):
    """Django's sign-in, with a button for each identity provider configured (from the settings:
    the page reads no database, so it answers while the database is down)."""

    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        providers = [
            {"name": provider["name"], "url": reverse("openid_connect_login", kwargs={"provider_id": provider["id"]})}
            for provider in settings.NESTLAB_OIDC_PROVIDERS
        ] + [
            {"name": provider["name"], "url": reverse("saml_login", kwargs={"organization_slug": provider["id"]})}
            for provider in settings.NESTLAB_SAML_PROVIDERS
        ]
        return {**super().get_context_data(**kwargs), "identity_providers": providers}


def saml_single_logout(request: HttpRequest, organization_slug: str) -> HttpResponse:
    """SAML single logout is not offered: signing out of Nestlab signs out of Nestlab only, and
    an IdP's logout request (unsigned, unless the IdP signs whole messages) cannot sign anyone out."""
    raise Http404("Nestlab does not take part in SAML single logout.")


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's view and its rules (AUTH_PASSWORD_VALIDATORS), wrong old passwords limited, the
    change recorded; the session stays signed in, the person's other sessions are signed out."""

    form_class = forms.LimitedPasswordChangeForm
    success_url = reverse_lazy("accounts:account")

    def dispatch(self, request, *args, **kwargs):
        # No old password to give: the account signs in through the school's directory or
        # identity provider, which keeps its password.
        if request.user.is_authenticated and not request.user.has_usable_password():
            messages.info(request, NO_PASSWORD_WORDS)
            return redirect("accounts:account")
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        services.password_changed(user=self.request.user, request=self.request)
        messages.success(self.request, "Your password is changed.")
        return response


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset by e-mail: the same answer whether or not the address has an account."""

    form_class = forms.LimitedPasswordResetForm
    success_url = reverse_lazy("accounts:password-reset-done")
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "client_address": self.request.META.get("REMOTE_ADDR", "")}


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "timeout_hours": settings.PASSWORD_RESET_TIMEOUT // 3600}


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    success_url = reverse_lazy("accounts:password-reset-complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        services.password_changed(user=form.user, request=self.request, by_reset=True)
        return response
