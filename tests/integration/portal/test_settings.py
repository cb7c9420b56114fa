"""The production profile: `check --deploy` clean, and no start without its secrets."""

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parents[3]


def _manage(*args, env):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def _production_env(**overrides):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "NESTLAB_ENCRYPTION_KEYS", "ALLOWED_HOSTS", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings.production",
        SECRET_KEY="x" * 64 + "-production-secret-key-for-the-check",
        NESTLAB_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="nestlab.example.edu",
        DATABASE_URL="postgres://nestlab@db.example.edu/nestlab",
        REDIS_URL="redis://redis.example.edu:6379/0",
    )
    env.update(overrides)
    return env


def test_production_profile_passes_check_deploy_with_no_warnings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_profile_refuses_to_start_without_a_secret_key():
    result = _manage("check", env=_production_env(SECRET_KEY=""))
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_profile_refuses_to_start_without_encryption_keys():
    result = _manage("check", env=_production_env(NESTLAB_ENCRYPTION_KEYS=""))
    assert result.returncode != 0
    assert "NESTLAB_ENCRYPTION_KEYS must be set" in result.stderr


def test_production_profile_refuses_to_fall_back_to_sqlite_or_the_embedded_redis():
    for name in ("DATABASE_URL", "REDIS_URL"):
        result = _manage("check", env=_production_env(**{name: ""}))
        assert result.returncode != 0
        assert f"{name} must be set" in result.stderr
