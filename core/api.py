"""API plumbing shared by every app: one error shape a person can read."""

from __future__ import annotations

import re

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core import audit
from core import errors as domain_errors

# How much of a refused value an error message repeats: an invalid power action once echoed the
# whole 200 KB input (issue 10).
ECHO_CHARACTERS = 40


def echo(value: object) -> str:
    """A refused value as an error message shows it: at most ECHO_CHARACTERS characters."""
    text = str(value)
    return text if len(text) <= ECHO_CHARACTERS else f"{text[:ECHO_CHARACTERS]}…"


class ChoiceField(serializers.ChoiceField):
    """DRF's ChoiceField, naming the allowed choices and repeating at most a few dozen
    characters of a refused value. Every choice field of the API is one (and ModelSerializers'
    through ``ModelSerializer.serializer_choice_field``, set in portal.apps)."""

    def to_internal_value(self, data):
        if data == "" and self.allow_blank:
            return ""
        try:
            return self.choice_strings_to_values[str(data)]
        except KeyError:
            choices = ", ".join(str(choice) for choice in self.choice_strings_to_values)
            raise exceptions.ValidationError(
                f"“{echo(data)}” is not one of the choices: {choices}.", code="invalid_choice"
            ) from None


class Pagination(LimitOffsetPagination):
    """``?limit=&offset=``, 100 by default; a larger ``limit`` than MAX gets MAX (an unbounded
    one reached the database as a number it cannot hold: a 500). Anything but a whole number
    (``limit`` from 1, ``offset`` from 0) is a 400 in words, as the schema says: DRF's own would
    quietly use the default."""

    max_limit = 1000

    def get_limit(self, request):
        self._whole_number(request, self.limit_query_param, minimum=1)
        return super().get_limit(request)

    def get_offset(self, request):
        self._whole_number(request, self.offset_query_param, minimum=0)
        return super().get_offset(request)

    @staticmethod
    def _whole_number(request, name: str, *, minimum: int) -> None:
        raw = request.query_params.get(name)
        if raw is None:
            return
        if not (raw.isascii() and raw.isdigit()) or int(raw) < minimum:
            raise exceptions.ValidationError({name: [f"“{echo(raw)}” is not a whole number from {minimum}."]})

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"].update(minimum=1)
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"].update(minimum=0)
        return parameters


class Conflict(exceptions.APIException):
    """The object is busy (for example a lab with an operation running)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object is busy."
    default_code = "conflict"


def exception_handler(exc, context):
    """DRF's handler, plus Django's ValidationError and PermissionDenied from services.

    Every error answers ``{"detail": "<words>"}``, with ``"errors": {field: [...]}``
    where fields are to blame. Refusals and bad tokens go to the audit log first.
    """
    _audit(exc, context)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            errors = {field: [str(m) for m in messages] for field, messages in exc.message_dict.items()}
            detail = " ".join(message for messages in errors.values() for message in messages)
            return Response({"detail": detail, "errors": errors}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, domain_errors.TooSoon):
        # DRF's Throttled sets Retry-After from ``wait``; its detail would add "Expected available
        # in N seconds." to words that already say when, so the service's words stand alone.
        words = str(exc)
        exc = exceptions.Throttled(wait=exc.retry_after)
        exc.detail = exceptions.ErrorDetail(words, code=exc.default_code)
    elif isinstance(exc, domain_errors.Conflict):
        exc = Conflict(str(exc) or None)
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" not in response.data:
        errors = {field: _sentences(messages) for field, messages in response.data.items()}
        detail = " ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items())
        response.data = {"detail": detail, "errors": errors}
    elif response is not None and isinstance(response.data, list):
        response.data = {"detail": " ".join(map(str, response.data))}
    return response


def _audit(exc, context) -> None:
    """The API's refusals into the audit log, once each: a 403 (a service's PermissionDenied, a
    permission class, a quota), a 404 for an object that exists (the API hides what a person may
    not see), and a token that does not authenticate. Anonymous callers are asked to sign in."""
    request = context.get("request")
    if request is None:
        return
    if isinstance(exc, exceptions.AuthenticationFailed):
        audit.audit_record(
            category=audit.Category.LOGIN_FAILED,
            action="api.token_auth",
            result=audit.Result.FAILED,
            detail=f"{exc.detail} ({request.method} {request.path})",
            request=request,
        )
    elif isinstance(exc, DjangoPermissionDenied | exceptions.PermissionDenied):
        audit.exception_refused(request, exc, pk_model=_pk_model(context))
    elif isinstance(exc, Http404 | exceptions.NotFound):
        audit.exception_refused(request, exc, pk_model=_pk_model(context), status=404)


def _pk_model(context):
    """The model a route's ``pk`` names: its view's queryset's."""
    view = context.get("view")
    if "pk" not in context.get("kwargs", {}) or view is None:
        return None
    queryset = getattr(view, "queryset", None)
    if queryset is None:
        try:
            queryset = view.get_queryset()
        except Exception:  # noqa: BLE001 - naming the target is best effort; the answer goes on
            return None
    return getattr(queryset, "model", None)


def _sentences(messages) -> list[str]:
    """A field's messages as a list of sentences, the documented shape: the per-item errors of a
    list field (``{1: ["..."]}``) and a nested object's per-field errors become "item 2: ..."
    and "name: ..." instead of a nested object (or its Python repr in ``detail``)."""
    if isinstance(messages, dict):
        return [f"{_label(key)}: {sentence}" for key, inner in messages.items() for sentence in _sentences(inner)]
    if isinstance(messages, list | tuple):
        if any(isinstance(inner, dict) for inner in messages):  # a list of nested objects
            return _sentences({index: inner for index, inner in enumerate(messages) if inner})
        return [sentence for inner in messages for sentence in _sentences(inner)]
    return [str(messages)]


def _label(key) -> str:
    return f"item {int(key) + 1}" if str(key).isdigit() else str(key)


def document_pagination_errors(result, generator, request, public):
    """drf-spectacular postprocessing hook: every paginated list documents the 400 that a
    ``limit`` or ``offset`` other than a whole number gets (``Pagination``)."""
    for path in result.get("paths", {}).values():
        for operation in path.values():
            names = {parameter.get("name") for parameter in operation.get("parameters", [])}
            if {"limit", "offset"} <= names:
                operation["responses"].setdefault(
                    "400",
                    {
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                        "description": "A `limit` or `offset` that is not a whole number (limit 1+, offset 0+).",
                    },
                )
    return result


# Path parameters that name the object a route is about: ``{id}`` or ``{<singular>_id}``.
_OBJECT_PARAMETER = re.compile(r"^\{(id|\w+_id)\}$")


def _component(schema: dict, result: dict) -> dict:
    reference = schema.get("$ref", "")
    return (
        result.get("components", {}).get("schemas", {}).get(reference.rsplit("/", 1)[-1], {}) if reference else schema
    )


def _answer_properties(operation: dict, status_code: str, result: dict) -> set[str]:
    content = operation.get("responses", {}).get(status_code, {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    return set(_component(schema, result).get("properties", {}))


def _link(target_path: str, target: dict, values: dict[str, str], source_path: str) -> dict:
    """An OpenAPI link to ``target``: its object parameters from ``values``, any other path
    parameter it shares with the source from the source's own request path."""
    parameters = {}
    for name in re.findall(r"\{(\w+)\}", target_path):
        if name in values:
            parameters[name] = values[name]
        elif f"{{{name}}}" in source_path:
            parameters[name] = f"$request.path.{name}"
        else:
            return {}
    return {"operationId": target["operationId"], "parameters": parameters}


def link_created_objects(result, generator, request, public):
    """drf-spectacular postprocessing hook: OpenAPI links from what an answer creates to the
    routes that use it, so a client (and schemathesis' stateful phase) can follow them.

    - A create (201 with an ``id``) leads to every route under its collection named by that
      id: ``POST /courses/`` to ``/courses/{id}/`` and ``/courses/{course_id}/enrollments/``.
    - An accepted action (202 answering an Operation) leads to ``/operations/{id}/`` and its
      cancel; one about a lab (a route under ``/labs/``) to the lab's routes as well
      (``/labs/{id}/…`` from the operation's ``lab``, which other operations leave empty).
    """
    paths = result.get("paths", {})
    operations_path = next((path for path in paths if path.endswith("/operations/{id}/")), None)
    labs_path = next((path for path in paths if path.endswith("/labs/{id}/")), None)
    for source_path, methods in paths.items():
        for method, operation in methods.items():
            if method != "post":
                continue
            links: dict[str, dict] = {}
            if "id" in _answer_properties(operation, "201", result):
                for target_path, target_methods in paths.items():
                    rest = target_path[len(source_path) :].split("/", 1)
                    if not target_path.startswith(source_path) or not _OBJECT_PARAMETER.match(rest[0]):
                        continue
                    values = {rest[0][1:-1]: "$response.body#/id"}
                    for target in target_methods.values():
                        if link := _link(target_path, target, values, source_path):
                            links[target["operationId"]] = link
                if links:
                    operation["responses"]["201"]["links"] = links
            accepted = _answer_properties(operation, "202", result)
            if {"id", "kind", "lab"} <= accepted:
                for base, field in ((operations_path, "id"), (labs_path, "lab")):
                    collection = base[: -len("{id}/")] if base else ""
                    if not base or (field == "lab" and not source_path.startswith(collection)):
                        continue
                    for target_path, target_methods in paths.items():
                        rest = target_path[len(collection) :].split("/", 1)
                        if not target_path.startswith(collection) or rest[0] != "{id}":
                            continue
                        for target in target_methods.values():
                            if link := _link(target_path, target, {"id": f"$response.body#/{field}"}, source_path):
                                links[target["operationId"]] = link
                if links:
                    operation["responses"]["202"]["links"] = links
    return result


# Error answers in the schema


class ErrorSerializer(serializers.Serializer):
    """Every error answer: a sentence, and per-field messages when fields are to blame."""

    detail = serializers.CharField(help_text="What went wrong, in words a person can read.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Messages per field, when fields are to blame.",
    )


_ERROR_WORDS = {
    400: "Bad input, in words; `errors` names the fields to blame.",
    403: "Not signed in, or not allowed.",
    404: "No such object, or not one you may see.",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Error answers for a schema: every one is ``{"detail": ..., "errors"?: {...}}``."""
    return {code: OpenApiResponse(ErrorSerializer, description=_ERROR_WORDS.get(code, "")) for code in codes}


# Conditional reads: a poll that changed nothing costs no serialization


def not_modified(request, etag: str) -> Response | None:
    """A 304 when the client's ``If-None-Match`` names ``etag`` (or ``*``), else None."""
    sent = request.headers.get("If-None-Match", "")
    tags = {tag.strip().removeprefix("W/") for tag in sent.split(",")} if sent else set()
    if etag in tags or "*" in tags:
        return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
    return None
