"""The three roles (admin, instructor, student), kept as Django groups.

Superusers are admins. Local accounts now; a single sign-on backend later only has to
put people in these groups.
"""

from __future__ import annotations

from enum import StrEnum

from django.contrib.auth.models import AbstractBaseUser, Group

from core.compiled import CompiledQuery


class Role(StrEnum):
    ADMIN = "admin"
    INSTRUCTOR = "instructor"
    STUDENT = "student"


GROUP_NAMES = {Role.ADMIN: "Admins", Role.INSTRUCTOR: "Instructors", Role.STUDENT: "Students"}
# Highest first: a person in several groups sees the portal of the highest role.
PRECEDENCE = (Role.ADMIN, Role.INSTRUCTOR, Role.STUDENT)
_ROLE_BY_GROUP = {name: role for role, name in GROUP_NAMES.items()}
# Asked on nearly every request: the SQL is built once (core/compiled.py).
_GROUP_NAMES_OF = CompiledQuery(lambda user_id: Group.objects.filter(user__id=user_id).values_list("name"), int)


def roles_of(user: AbstractBaseUser | None) -> frozenset[Role]:
    """The roles a user holds (cached on the user object for the request)."""
    if user is None or not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_nestlab_roles", None)
    if cached is not None:
        return cached
    held = {_ROLE_BY_GROUP[name] for (name,) in _GROUP_NAMES_OF.rows(user.pk) if name in _ROLE_BY_GROUP}
    if user.is_superuser:
        held.add(Role.ADMIN)
    user._nestlab_roles = frozenset(held)
    return user._nestlab_roles


def primary_role(user: AbstractBaseUser | None) -> Role | None:
    held = roles_of(user)
    return next((role for role in PRECEDENCE if role in held), None)


def is_admin(user: AbstractBaseUser | None) -> bool:
    return Role.ADMIN in roles_of(user)


def is_instructor(user: AbstractBaseUser | None) -> bool:
    return Role.INSTRUCTOR in roles_of(user)


def is_student(user: AbstractBaseUser | None) -> bool:
    return Role.STUDENT in roles_of(user)


def role_grant(*, user: AbstractBaseUser, role: Role) -> None:
    """Put a user in a role's group (creating the group if a migration has not)."""
    group, _ = Group.objects.get_or_create(name=GROUP_NAMES[role])
    user.groups.add(group)
    if hasattr(user, "_nestlab_roles"):
        del user._nestlab_roles


def role_revoke(*, user: AbstractBaseUser, role: Role) -> None:
    """Take a user out of a role's group (a superuser stays an admin)."""
    user.groups.remove(*Group.objects.filter(name=GROUP_NAMES[role]))
    if hasattr(user, "_nestlab_roles"):
        del user._nestlab_roles
