"""Sign-in backends beside Django's: a school's directory (LDAP or Active Directory, with
django-auth-ldap) and local passwords that can be turned off for all but break-glass admins.

A directory sign-in creates the account on first use and updates name, e-mail and role on every
later one: the role is that of the first configured directory group the person is in (admin,
then instructor, then student; ``NESTLAB_LDAP_ROLE_GROUPS``). Someone in none of them is refused
like a wrong password (django-axes counts it and locks out as for local sign-in).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django_auth_ldap.backend import LDAPBackend

from accounts import services
from core import roles

logger = logging.getLogger(__name__)


def directory_role(group_dns: set[str], role_groups: dict[str, str]) -> roles.Role | None:
    """The role of the first configured group (in roles' precedence) among ``group_dns``."""
    held = {dn.lower() for dn in group_dns}
    for role in roles.PRECEDENCE:
        dn = role_groups.get(role.value)
        if dn and dn.lower() in held:
            return role
    return None


class DirectoryBackend(LDAPBackend):
    """django-auth-ldap's backend (its AUTH_LDAP_* settings), with Nestlab's roles."""

    def authenticate_ldap_user(self, ldap_user, password):
        user = super().authenticate_ldap_user(ldap_user, password)
        if user is None:
            return None
        role = directory_role(set(ldap_user.group_dns), settings.NESTLAB_LDAP_ROLE_GROUPS)
        if role is None:
            logger.info("Directory sign-in of %s refused: in none of the role groups", user.get_username())
            return None
        services.role_set(user=user, role=role, source="directory")
        services.identity_signed_in(
            user=user,
            values={dn.lower() for dn in ldap_user.group_dns},
            course_map={dn.lower(): code for dn, code in settings.NESTLAB_LDAP_COURSE_GROUPS.items()},
            source="directory",
        )
        return user


class LocalPasswordBackend(ModelBackend):
    """Passwords stored in Nestlab. With ``NESTLAB_LOCAL_PASSWORDS`` off (a school signing everyone
    in through its directory or identity provider), only superusers, the break-glass admins,
    sign in with one."""

    def user_can_authenticate(self, user) -> bool:
        if not settings.NESTLAB_LOCAL_PASSWORDS and not user.is_superuser:
            return False
        return super().user_can_authenticate(user)
