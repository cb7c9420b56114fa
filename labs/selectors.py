"""Reads shared by the pages, the API and the consumers."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from labs.models import Operation
from portal import roles


def operation_list(*, user: AbstractBaseUser) -> QuerySet[Operation]:
    """Operations a user may see: admins all, everyone else their own."""
    operations = Operation.objects.select_related("endpoint", "actor")
    if roles.is_admin(user):
        return operations
    return operations.filter(actor=user)
