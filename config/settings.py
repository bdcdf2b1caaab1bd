"""Arbiter settings. Everything that differs between machines comes from the environment.

Environment variables:
    DEBUG            "1"/"true" turns debug on; off by default.
    SECRET_KEY       required when DEBUG is off.
    DATABASE_URL     default: SQLite file var/arbiter.sqlite3 (WAL, busy timeout, IMMEDIATE transactions).
    DATABASE_PREPARED_STATEMENTS "1" on PostgreSQL: server-side binding and prepared statements
                     (faster; not behind a transaction-mode pooler such as PgBouncer).
    ALLOWED_HOSTS    comma-separated; default "localhost,127.0.0.1" (plus "*" only when DEBUG is on).
    CSRF_TRUSTED_ORIGINS comma-separated origins, for deployments behind a proxy.
    ARBITER_DATA_DIR checkpoints and exports; default var/data.
    SECURE_SSL_REDIRECT / HTTPS  "1" when served over HTTPS (turns on HSTS, secure cookies, redirect).
    BEHIND_PROXY     "1" behind a TLS-terminating proxy: trust its X-Forwarded-Proto and X-Forwarded-For.
    ARBITER_PROXY_HOPS  proxies in front of the web server (default 1 with BEHIND_PROXY, else 0);
                     login lockouts count the client named that many entries from the right of
                     X-Forwarded-For (config/proxy.py).
    ARBITER_MAX_BODY_BYTES / ARBITER_ANONYMOUS_MAX_BODY_BYTES  request bodies over these sizes
                     (signed in / not) are refused with 413 before they are read (config/middleware.py).
    ARBITER_IMPORT_MAX_*  what one import may decode (feedback/import_limits.py; README settings table).
    ARBITER_TOKEN_TTL_DAYS  lifetime of new API tokens in days; empty: they never expire.
"""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("ARBITER_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    """Read a boolean environment variable ("1", "true", "yes", "on" are true)."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    """Read a comma-separated environment variable into a list of non-empty strings."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int | None, *, minimum: int, maximum: int | None = None, meaning: str) -> int | None:
    """Read a whole-number environment variable (empty or unset: ``default``); outside
    ``minimum``..``maximum`` or not a number: ``ImproperlyConfigured`` naming it and ``meaning``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum}" + (f" to {maximum}" if maximum is not None else " up")
        raise ImproperlyConfigured(f"{name} must be a whole number {bounds} ({meaning}); it is {raw!r}.")
    return value


DEBUG = env_bool("DEBUG")
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (set DEBUG=1 for local development).")
    SECRET_KEY = "django-insecure-local-development-only"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
ARBITER_DATA_DIR = Path(os.environ.get("ARBITER_DATA_DIR", VAR_DIR / "data"))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "axes",
    "csp",
    "django_tasks",
    "django_tasks_db",
    "feedback",
    "training",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before anything reads a body (CsrfViewMiddleware.process_view reads the form): 413 from the
    # declared length, with the smaller limit for requests that are not signed in.
    "config.middleware.RequestBodyLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
    # Names the signed-in user in audit events raised by signals (role changes made in the admin).
    "feedback.governance.actor.AuditActorMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "feedback.context_processors.roles",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
DEFAULT_SQLITE_PATH = VAR_DIR / "arbiter.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{DEFAULT_SQLITE_PATH}"), conn_max_age=600, conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A fresh clone has no var/ yet; SQLite creates the file but not its folder.
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 600
    DATABASES["default"]["OPTIONS"] = {
        # Every atomic() block takes the write lock up front, so two writers never deadlock on
        # a lock upgrade; readers go on in parallel thanks to WAL.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,  # seconds to wait for the write lock (busy timeout)
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
            "PRAGMA busy_timeout=20000; PRAGMA cache_size=-32000;"
        ),
    }
    # Tests use a real file (not :memory:) so threads and processes share one database; one file
    # per test process, so two test runs on one machine never share (or delete) each other's.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-arbiter-{os.getpid()}.sqlite3")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DATABASE_PREPARED_STATEMENTS"):
    # Server-side binding with statements prepared after 5 uses per connection: PostgreSQL stops
    # re-planning the API's queries (about +35% votes/s in bench/annotate_load.py). Off by default:
    # it breaks behind a transaction-mode connection pooler (PgBouncer).
    DATABASES["default"].setdefault("OPTIONS", {}).update({"server_side_binding": True, "prepare_threshold": 5})
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # One test database per test process, so concurrent runs on one server never collide.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -------------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "feedback.roles.PermissionBackend",  # ModelBackend with a one-query permission lookup
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Login throttling (django-axes): 5 failures for one username from one address locks it for 15 minutes.
# "One address" is the client's: behind BEHIND_PROXY's proxy, read from X-Forwarded-For with
# ARBITER_PROXY_HOPS trusted hops (config/proxy.py), so users behind the proxy are counted apart.
BEHIND_PROXY = env_bool("BEHIND_PROXY")
ARBITER_PROXY_HOPS = env_int(
    "ARBITER_PROXY_HOPS", 1 if BEHIND_PROXY else 0, minimum=0, maximum=16, meaning="proxies in front of the app"
)
AXES_CLIENT_IP_CALLABLE = "config.proxy.client_ip_address"
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# --- Security headers -------------------------------------------------------------------------
HTTPS = env_bool("HTTPS", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0))
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# Content-Security-Policy: no inline scripts, nothing from other origins. Model output is
# untrusted; even if some HTML slipped through rendering, the browser would refuse to run it.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# --- Static files -----------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # htmx comes from the npm package pinned in package.json (npm ci), never a committed copy.
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or env_bool("ARBITER_PLAIN_STATIC")
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG or env_bool("ARBITER_PLAIN_STATIC")

# --- Limits -----------------------------------------------------------------------------------
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024  # bytes; bulk prompt/completion uploads
# Whole request bodies (file uploads included), refused with 413 from their Content-Length before
# they are read (config/middleware.py). Keep the proxy's limit (nginx client_max_body_size) equal.
# 32 MiB holds the largest legitimate body: a 20 MiB file on the import page, or a 16 MiB JSON body.
ARBITER_MAX_BODY_BYTES = env_int("ARBITER_MAX_BODY_BYTES", 32 * 1024 * 1024, minimum=1, meaning="bytes")
# Requests that are not signed in (log-in form, token log-in) never need more than this.
ARBITER_ANONYMOUS_MAX_BODY_BYTES = env_int(
    "ARBITER_ANONYMOUS_MAX_BODY_BYTES", 64 * 1024, minimum=1, maximum=ARBITER_MAX_BODY_BYTES,
    meaning="bytes, at most ARBITER_MAX_BODY_BYTES",
)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2000
# What one import may decode (feedback/import_limits.py): a file past any is refused whole,
# naming the limit and the line or row, before it can grow the process (bench/import_memory.py).
ARBITER_IMPORT_MAX_DECOMPRESSED_BYTES = env_int(
    "ARBITER_IMPORT_MAX_DECOMPRESSED_BYTES", 64 * 1024 * 1024, minimum=1, meaning="bytes after gunzip or Parquet decoding"
)
ARBITER_IMPORT_MAX_ROWS = env_int("ARBITER_IMPORT_MAX_ROWS", 50_000, minimum=1, meaning="rows per file")
ARBITER_IMPORT_MAX_VALUE_CHARS = env_int(
    "ARBITER_IMPORT_MAX_VALUE_CHARS", 2_000_000, minimum=1, meaning="characters in one text value"
)
ARBITER_IMPORT_MAX_LINE_BYTES = env_int(
    "ARBITER_IMPORT_MAX_LINE_BYTES", 10 * 1024 * 1024, minimum=1024, meaning="bytes in one JSON line"
)
# Uploads over this many bytes import as background jobs (feedback/import_jobs.py); smaller inline.
ARBITER_IMPORT_INLINE_MAX_BYTES = env_int(
    "ARBITER_IMPORT_INLINE_MAX_BYTES", 2 * 1024 * 1024, minimum=0, meaning="bytes imported in the request"
)
ARBITER_IMPORT_MAX_DEPTH = env_int("ARBITER_IMPORT_MAX_DEPTH", 32, minimum=2, maximum=500, meaning="nesting levels")

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "feedback.api.authentication.TokenAuthentication",  # DRF's, with a one-query lookup
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "feedback.api.schema.AutoSchema",  # drf-spectacular's, with the error answers
    "DEFAULT_PAGINATION_CLASS": "feedback.api.pagination.IdCursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "feedback.api.errors.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "feedback.api.parsers.LimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Arbiter API",
    "DESCRIPTION": "Prompts, completions, comparisons, assignments and preference votes; checkpoints and jobs.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files from the sidecar package, served from this origin (the CSP allows no
    # other); the page itself is feedback/api/docs.py's split view.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ChoiceEnum": "feedback.models.Choice",
        "AspectChoiceEnum": "feedback.models.AspectChoice",
        "StrengthEnum": "feedback.models.Strength",
        "SplitEnum": "feedback.models.Split",
        "ComparisonStatusEnum": "feedback.models.ComparisonStatus",
        "AssignmentStatusEnum": "feedback.models.AssignmentStatus",
        "SideEnum": "feedback.models.Side",
        "SkipReasonEnum": "feedback.models.SkipReason",
        "RationaleModeEnum": "feedback.campaigns.models.RationaleMode",
        "QualityReportStatusEnum": "feedback.quality.models.QualityReportStatus",
        "IdentityPatternKindEnum": "feedback.identity.models.PatternKind",
        "VoteChoiceEnum": "feedback.api.serializers.SUBMIT_CHOICES",
        "JobKindEnum": "training.models.JobKind",
        "CheckpointKindEnum": "training.models.CheckpointKind",
        "JudgeKindEnum": "training.judges.models.JudgeKind",
        "VoteAspectEnum": "feedback.api.serializers.SUBMIT_ASPECT_CHOICES",
        "VoteReviseChoiceEnum": "feedback.api.serializers.REVISE_CHOICES",
        "VoteReviseAspectEnum": "feedback.api.serializers.REVISE_ASPECT_CHOICES",
        "CheckpointKindEnum": "training.models.CheckpointKind",
        "JobKindEnum": "training.models.JobKind",
        "JobStatusEnum": "training.models.JobStatus",
        "ConflictCodeEnum": "feedback.api.schema.CONFLICT_CODES",
    },
}

# --- Background tasks -------------------------------------------------------------------------
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}

# --- Arbiter ----------------------------------------------------------------------------------
# Apps whose every permission the "admins" group holds.
ARBITER_ADMIN_APPS = ["feedback", "training"]
# API tokens (feedback/tokens/): lifetime in days of tokens issued without a lifetime of their own,
# and the longest a user may ask for. Empty: tokens never expire unless their owner says so.
ARBITER_TOKEN_TTL_DAYS = env_int("ARBITER_TOKEN_TTL_DAYS", None, minimum=1, maximum=3650, meaning="days")
ARBITER_LEASE_SECONDS = int(os.environ.get("ARBITER_LEASE_SECONDS", "600"))
# Exports matching at most this many votes run inline, in the request; larger ones in the worker.
ARBITER_EXPORT_INLINE_MAX_VOTES = int(os.environ.get("ARBITER_EXPORT_INLINE_MAX_VOTES", "20000"))
# Training runs must say why they are warranted (issue 18): off by default, on for organisations that ask for it.
ARBITER_RUN_JUSTIFICATION_REQUIRED = env_bool("ARBITER_RUN_JUSTIFICATION_REQUIRED")
# Person names in the personal-data scan (feedback/governance/names.py): a spaCy model package name
# (en_core_web_lg) or a model folder, run through presidio-analyzer in a child process. Empty: names
# are not scanned, and each scan says so.
ARBITER_NAME_MODEL = os.environ.get("ARBITER_NAME_MODEL", "").strip()
# Exports matching at least ARBITER_EXPORT_PARALLEL_MIN_VOTES votes are written by this many
# processes at once (JSONL, CSV, Parquet; feedback.exports.parallel). 1 turns it off.
ARBITER_EXPORT_WORKERS = int(os.environ.get("ARBITER_EXPORT_WORKERS", str(min(2, os.cpu_count() or 1))))
ARBITER_EXPORT_PARALLEL_MIN_VOTES = int(os.environ.get("ARBITER_EXPORT_PARALLEL_MIN_VOTES", "200000"))
# Quality reports (feedback/quality/schedule.py): a human vote queues a recompute of the overall and
# its campaign's report unless one is pending or one ran within this many seconds.
ARBITER_QUALITY_DEBOUNCE_SECONDS = env_int(
    "ARBITER_QUALITY_DEBOUNCE_SECONDS", 60, minimum=0, maximum=86400, meaning="seconds between recomputes after votes"
)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"refusal_without_traceback": {"()": "config.log_filters.RefusalWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    # a refused page (403) is logged as one line, without the PermissionDenied traceback
    "loggers": {"django.request": {"filters": ["refusal_without_traceback"]}},
}
