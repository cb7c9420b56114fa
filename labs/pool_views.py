"""The warm pool's part of the class page (issue 13): what the pool holds, live, and the
instructor's form to size it. Thin: ``labs.pools`` decides and writes, ``labs.selectors`` reads;
``PUT /api/v1/courses/<id>/pool/`` calls the same service.

The form posts with htmx and gets the panel back (a refusal in words, with its status); without
JavaScript it posts, redirects to the class page and says it there.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from core.errors import refusal_status
from core.web import forbidden, refusal_message
from labs import pools
from labs.forms import PoolForm
from labs.models import WarmPool
from labs.views import _class_course_or_404, pool_context


@login_required
@require_GET
def class_pool(request: HttpRequest, course_id: int) -> HttpResponse:
    """The pool panel alone (the class page's live fragment)."""
    try:
        course = _class_course_or_404(request, course_id)
    except PermissionDenied as refusal:
        return forbidden(request, refusal)
    return render(request, "labs/_pool_panel.html", pool_context(request, course))


@login_required
@require_POST
def class_pool_set(request: HttpRequest, course_id: int) -> HttpResponse:
    """Size the course's warm pool: a number and how it is sized."""
    try:
        course = _class_course_or_404(request, course_id)
    except PermissionDenied as refusal:
        return forbidden(request, refusal)
    form = PoolForm(request.POST, instance=WarmPool.objects.filter(course=course).first() or WarmPool(course=course))
    status, said = 400, "The pool was not changed: see below."
    if form.is_valid():
        try:
            pool = pools.pool_set(
                course=course, actor=request.user, size=form.cleaned_data["size"], sizing=form.cleaned_data["sizing"]
            )
        except (PermissionDenied, ValidationError) as refusal:
            status, said = refusal_status(refusal), f"The pool was not changed. {refusal_message(request, refusal)}"
        else:
            status, said = 200, f"The warm pool keeps {pool.size} lab{'s' if pool.size != 1 else ''} ready"
            said += " plus one per student without a lab before each session." if pool.sizing == "schedule" else "."
            form = None
    if request.headers.get("HX-Request"):
        return render(
            request, "labs/_pool_panel.html", pool_context(request, course, form=form, said=said), status=status
        )
    (messages.success if status == 200 else messages.error)(request, said)
    return redirect(reverse("labs:class-labs", args=[course.pk]) + "#pool")
