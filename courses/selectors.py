"""Reads of the courses app shared by pages, API and consumers."""

from __future__ import annotations

from django.db.models import QuerySet

from courses.models import VCenterEndpoint


def endpoint_list() -> QuerySet[VCenterEndpoint]:
    return VCenterEndpoint.objects.all()
