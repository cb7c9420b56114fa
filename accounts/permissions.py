"""Who may make and see accounts: the one place each rule is written."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from core import roles


def can_create_instructors(user: AbstractBaseUser) -> bool:
    """Admins make instructor accounts (and see everyone's, on the people page)."""
    return roles.is_admin(user)


def can_create_students(user: AbstractBaseUser) -> bool:
    """Instructors and admins make student accounts (a roster's Add and upload)."""
    return roles.is_instructor(user) or roles.is_admin(user)
