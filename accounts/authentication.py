"""``Authorization: Token <key>`` for both kinds of key: a named API key made on the account page
(``nlk_...``, looked up by its digest) or the token ``POST /api/v1/auth/token/`` hands out."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

from accounts.models import API_KEY_PREFIX, ApiKey, api_key_digest
from core.compiled import CompiledQuery

# A key's "last used" is written at most this often: a script polling every second must not
# cost a write per request.
LAST_USED_PRECISION = timedelta(minutes=1)


# Every API request with a token reads it: the SQL is built once (core/compiled.py).
_TOKEN_WITH_USER = CompiledQuery(lambda key: Token.objects.select_related("user").filter(key=key), str)


class ApiKeyAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str):
        if not key.startswith(API_KEY_PREFIX):
            # DRF's own lookup and words, with the query compiled once.
            token = _TOKEN_WITH_USER.first(key)
            if token is None:
                raise AuthenticationFailed("Invalid token.")
            if not token.user.is_active:
                raise AuthenticationFailed("User inactive or deleted.")
            return token.user, token
        found = ApiKey.objects.select_related("user").filter(digest=api_key_digest(key)).first()
        if found is None:
            raise AuthenticationFailed("Invalid token.")
        if not found.user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        now = timezone.now()
        if found.last_used_at is None or now - found.last_used_at > LAST_USED_PRECISION:
            ApiKey.objects.filter(pk=found.pk).update(last_used_at=now)
        return found.user, found
