"""Test profile: the base settings with a fast password hasher (hashing dominates
test time otherwise). Child processes started by tests (daphne, Celery) use it too."""

from portal.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
