"""The production profile: `check --deploy` clean, and no start without its secrets; how the
settings hold database connections under daphne."""

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest
from cryptography.fernet import Fernet
from django.db import connection
from rest_framework.authtoken.models import Token

from portal.simulator import free_port
from tests.factories import LtiPlatformFactory, StudentFactory
from tests.support.processes import WebProcess

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
        "'csrf_secure': r.cookies['csrftoken']['secure'], "
        "'csrf_samesite': r.cookies['csrftoken']['samesite']}))"
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
    # An LMS shows Nestlab in an iframe (LTI): its cookies must reach a framed page.
    assert answer["csrf_samesite"] == "None"


def test_production_profile_redirects_plain_http_to_https():
    script = (
        "from django.test import Client; "
        "r = Client().get('/login/', headers={'host': 'nestlab.example.edu'}); "
        "print(r.status_code, r.headers['Location'])"
    )
    result = _manage("shell", "-c", script, env=_production_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["301", "https://nestlab.example.edu/login/"]


@pytest.mark.parametrize(("given", "off"), [(None, False), ("1", True)])
def test_server_side_cursors_go_off_only_behind_a_transaction_pooler(given, off):
    """DATABASE_DISABLE_SERVER_SIDE_CURSORS: what PgBouncer in transaction mode needs (docs/deployment.md)."""
    env = _production_env()
    env.pop("DATABASE_DISABLE_SERVER_SIDE_CURSORS", None)
    if given is not None:
        env["DATABASE_DISABLE_SERVER_SIDE_CURSORS"] = given
    shown = _manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DATABASES['default']['DISABLE_SERVER_SIDE_CURSORS'])",
        env=env,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split()[-1] == str(off)  # after the shell's own line on what it imported


@pytest.mark.django_db(transaction=True)
def test_daphne_keeps_one_database_connection_for_requests_one_after_another():
    """Daphne runs HTTP requests on a fixed set of threads (portal/asgi_limit.py), so requests
    one after another reuse one connection, the middleware's queries after the view included;
    before, every request had a thread and a connection of its own (issue 16)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL; CI does)")
    token = Token.objects.create(user=StudentFactory())
    web = WebProcess(port=free_port()).start()
    try:
        for _ in range(20):
            request = urllib.request.Request(
                f"{web.url}/api/v1/operations/", headers={"Authorization": f"Token {token.key}"}
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200
        # A page in an LMS's frame reads the platforms that may frame it after its view.
        LtiPlatformFactory()
        framed = urllib.request.Request(f"{web.url}/lti/jwks/", headers={"Sec-Fetch-Dest": "iframe"})
        with urllib.request.urlopen(framed, timeout=30) as response:
            assert "frame-ancestors 'self' https://moodle" in response.headers["Content-Security-Policy"]
        # A request's thread is freed a moment after its answer is sent, so the next request
        # may find it still busy and take a second one; never one per request.
        assert 1 <= _database_connections_of(web.process.pid) <= 2
    finally:
        web.stop()


def _database_connections_of(pid: int) -> int:
    """Connections the process holds to the test database (by their client ports)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT client_port FROM pg_stat_activity WHERE datname = current_database()")
        ports = {port for (port,) in cursor.fetchall()}
    return sum(1 for socket_ in psutil.Process(pid).net_connections(kind="tcp") if socket_.laddr.port in ports)
