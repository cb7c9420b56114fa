"""Production profile: the base settings plus the hardening `check --deploy` asks for.

Everything secret comes from the environment; this module refuses to start without it
rather than fall back to development defaults.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from portal.settings import *  # noqa: F403
from portal.settings import env_bool, env_list


def _required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise ImproperlyConfigured(f"{name} must be set in the environment for production.")
    return value


DEBUG = False
WHITENOISE_USE_FINDERS = False
WHITENOISE_AUTOREFRESH = False
SECRET_KEY = _required("SECRET_KEY")
NESTLAB_ENCRYPTION_KEYS = env_list("NESTLAB_ENCRYPTION_KEYS") or [_required("NESTLAB_ENCRYPTION_KEYS")]
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS") or [_required("ALLOWED_HOSTS")]
# No silent fallback to the development SQLite file or the embedded Redis port.
_required("DATABASE_URL")
_required("REDIS_URL")

# Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
# Load balancers probe over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(60 * 60 * 24 * 365)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
# An LMS shows Nestlab in an iframe (LTI 1.3): a framed page gets its cookies only when they are
# SameSite=None (and Secure). Django's CSRF tokens and Origin checks still guard every post.
# NESTLAB_LMS_IFRAMES=0 keeps them Lax where no LMS frames Nestlab (docs/identity.md).
NESTLAB_LTI_PLAIN_HTTP = False  # LTI launches need the browser's state cookie (lti/views.py)
if env_bool("NESTLAB_LMS_IFRAMES", True):
    SESSION_COOKIE_SAMESITE = "None"
    CSRF_COOKIE_SAMESITE = "None"
X_FRAME_OPTIONS = "DENY"
