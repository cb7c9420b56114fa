"""REST API of the audit log: admins list the entries, filtered, or export them as CSV.

Thin: the same selector (``core.audit.audit_entry_list``) and CSV stream as the page.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.decorators import api_view, permission_classes, renderer_classes
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request

from core import audit, roles
from core.api import ChoiceField, errors
from core.models import AuditEntry


class IsAdmin(BasePermission):
    message = "Only admins read the audit log."

    def has_permission(self, request, view) -> bool:
        return roles.is_admin(request.user)


class AuditEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "when",
            "actor",
            "actor_username",
            "category",
            "action",
            "target",
            "target_type",
            "target_id",
            "result",
            "detail",
            "source",
            "remote_addr",
        ]
        read_only_fields = fields


class AuditFilterSerializer(serializers.Serializer):
    person = serializers.CharField(
        required=False, max_length=150, help_text="A user name, exactly (for failed logins: the one tried)."
    )
    category = ChoiceField(choices=AuditEntry.Category.choices, required=False)
    result = ChoiceField(choices=AuditEntry.Result.choices, required=False)
    q = serializers.CharField(required=False, max_length=200, help_text="Text found in the action, target or detail.")
    date_from = serializers.DateField(required=False, help_text="From this day on (the portal's time zone).")
    date_to = serializers.DateField(required=False, help_text="Up to and including this day.")

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise serializers.ValidationError({"date_to": "The end date is before the start date."})
        return data


def _filters(request: Request) -> dict[str, Any]:
    query = AuditFilterSerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    data = query.validated_data
    return {
        "person": data.get("person", ""),
        "category": data.get("category", ""),
        "result": data.get("result", ""),
        "text": data.get("q", ""),
        "date_from": data.get("date_from"),
        "date_to": data.get("date_to"),
    }


WHAT = (
    "Admins. Every sign-in (and failed one, lockout, API token), refusal and operation: who, what, when, "
    "result, in words. Newest first."
)


@extend_schema(
    summary="List audit log entries",
    description=f"{WHAT} Filter with `?person=&category=&result=&q=&date_from=&date_to=`.",
    parameters=[AuditFilterSerializer],
    responses={200: AuditEntrySerializer(many=True), **errors(400, 403)},
    tags=["audit"],
)
class AuditEntryList(generics.ListAPIView):
    serializer_class = AuditEntrySerializer
    permission_classes = [IsAuthenticated, IsAdmin]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return AuditEntry.objects.none()
        return audit.audit_entry_list(**_filters(self.request))


class CSVRenderer(BaseRenderer):
    """Lets a client ask for ``text/csv``; only errors are rendered here (the export streams)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        detail = data.get("detail", "") if isinstance(data, dict) else str(data)
        out = io.StringIO()
        csv.writer(out).writerows([["detail"], [audit.csv_safe(detail)]])
        return out.getvalue().encode()


@extend_schema(
    operation_id="audit_export",
    summary="Export audit log entries as CSV",
    description=(
        f"{WHAT} The same filters as the list; every matching entry (not paginated), streamed as "
        f"`text/csv` with the columns {', '.join(f'`{column}`' for column in audit.CSV_COLUMNS)}. A cell that "
        "a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) "
        "gets a leading `'`."
    ),
    parameters=[AuditFilterSerializer],
    # 404: a ?format= other than csv or json (DRF's format override finds no renderer).
    responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR), **errors(400, 403, 404)},
    tags=["audit"],
)
@api_view(["GET"])
@renderer_classes([JSONRenderer, CSVRenderer])
@permission_classes([IsAuthenticated, IsAdmin])
def audit_export(request: Request):
    return audit.csv_response(request, audit.audit_entry_list(**_filters(request)))
