"""The production profile: `check --deploy` clean, and no start without its secrets."""

import json
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


def test_production_profile_sends_the_security_headers():
    """A page served by the production profile (over HTTPS, as the proxy forwards it) carries
    the content security policy, HSTS and the cookie and framing rules."""
    script = (
        "import json; from django.test import Client; "
        "r = Client().get('/login/', headers={'host': 'nestlab.example.edu', 'x-forwarded-proto': 'https'}); "
        "print(json.dumps({'status': r.status_code, 'headers': dict(r.headers), "
        "'csrf_secure': r.cookies['csrftoken']['secure']}))"
    )
    result = _manage("shell", "-c", script, env=_production_env())
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 200
    headers = answer["headers"]
    policy = dict(directive.strip().split(" ", 1) for directive in headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert answer["csrf_secure"] is True


def test_production_profile_redirects_plain_http_to_https():
    script = (
        "from django.test import Client; "
        "r = Client().get('/login/', headers={'host': 'nestlab.example.edu'}); "
        "print(r.status_code, r.headers['Location'])"
    )
    result = _manage("shell", "-c", script, env=_production_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["301", "https://nestlab.example.edu/login/"]
