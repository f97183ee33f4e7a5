"""Settings shared by every environment. Everything configurable comes from the environment."""

from __future__ import annotations

import zlib
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config.settings.env import (
    env_bool,
    env_int,
    env_list,
    env_networks,
    env_optional,
    env_rate,
    env_str,
    env_timezone,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent

SECRET_KEY = env_str("SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# The reverse proxies in front of gunicorn whose X-Forwarded-For names the client (rate limits and
# the audit trail's address; crm/core/ratelimit.py). Empty: REMOTE_ADDR is the client.
TRUSTED_PROXIES = env_networks("TRUSTED_PROXIES")

INSTALLED_APPS = [
    # crm.core first: its `migrate` command (migrations run as the owning role) overrides Django's.
    "crm.core",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "csp",
    "crm.tenancy",
    "crm.accounts",
    "crm.messaging",
    "customers",
    "segmentation",
    "loyalty",
    "complaints",
    "surveys",
    "followups",
    "sales",
    "dashboards",
    # the wiring: the demo seed's command (config/management/commands/seed_demo.py)
    "config",
]

MIDDLEWARE = [
    "crm.core.health.HealthCheckMiddleware",  # /healthz needs no session or database transaction
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Opens the request's transaction and sets both tenancy locks; must come after auth.
    "crm.tenancy.middleware.TenantMiddleware",
    "crm.tenancy.middleware.LoginRequiredMiddleware",
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
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "crm.tenancy.context_processors.tenancy",
            ],
        },
    },
]


# --- Database -------------------------------------------------------------------------------
# DATABASE_URL is the application role: it owns no table and has no BYPASSRLS, so row-level
# security applies to every query. DATABASE_OWNER_URL is the role that owns the schema; only
# `manage.py migrate` uses it (see crm/core/management/commands/migrate.py).
def local_cluster_port(root: Path) -> int:
    """Port of the project-local PostgreSQL (scripts/devdb.sh); the Makefile derives the same one."""
    return 54000 + zlib.crc32(str(root).encode()) % 900


_database_url = env_optional("DATABASE_URL")
_owner_url = env_optional("DATABASE_OWNER_URL")
if _database_url is None and (BASE_DIR / ".pgdata" / "data" / "PG_VERSION").exists():
    # `make` created a project-local cluster here: plain `manage.py …` uses it too.
    _local = f"127.0.0.1:{local_cluster_port(BASE_DIR)}/crm"
    _database_url = f"postgres://crm_app@{_local}"
    _owner_url = _owner_url or f"postgres://crm_owner@{_local}"
if _database_url is None:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set. Use `make demo` / `make test` (they start a project-local "
        "PostgreSQL and set it), or export DATABASE_URL=postgres://crm_app@127.0.0.1:5432/crm."
    )
if not _database_url.startswith(("postgres://", "postgresql://")):
    raise ImproperlyConfigured("DATABASE_URL must be a postgres:// URL: PostgreSQL is the only database.")

DATABASES = {
    "default": dj_database_url.parse(
        _database_url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0), conn_health_checks=True
    ),
}
DATABASES["default"]["TEST"] = {"NAME": env_optional("DATABASE_TEST_NAME") or "test_crm"}
CRM_DB_APP_ROLE: str = DATABASES["default"].get("USER") or ""

DATABASE_OWNER = None
if _owner_url:
    DATABASE_OWNER = dj_database_url.parse(_owner_url)
    DATABASES["owner"] = dj_database_url.parse(_owner_url)
    DATABASES["owner"]["TEST"] = {"MIRROR": "default"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "crm.accounts.password_validation.CharacterClassValidator"},
]
AUTHENTICATION_BACKENDS = ["crm.accounts.backends.EmailOrUsernameBackend"]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
# Sign-in lockout: this many failures within the window lock the account for the window.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 12, minimum=300)
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- Internationalisation ---------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_timezone("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # browser libraries installed from the npm registry by `make assets` (package.json), served by the app
    ("vendor/chart.js", BASE_DIR / "node_modules" / "chart.js" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
MEDIA_URL = "/media/"

# --- Redis, cache, Celery ---------------------------------------------------------------------
REDIS_URL = env_optional("REDIS_URL")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://")):
    raise ImproperlyConfigured("REDIS_URL must be a redis:// or rediss:// URL.")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "crm"}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

CELERY_BROKER_URL = env_optional("CELERY_BROKER_URL") or REDIS_URL
CELERY_RESULT_BACKEND = env_optional("CELERY_RESULT_BACKEND") or CELERY_BROKER_URL
# With no broker the tasks run in-process, so a laptop or a small install needs no Redis.
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_RESULT_EXPIRES = 60 * 60 * 24

# --- Email ------------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "crm@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- REST API ---------------------------------------------------------------------------------
# Content-Security-Policy (django-csp): scripts, styles, images, fonts and requests only from this
# site; no inline script or style anywhere in the product (behaviour lives in static/js). With
# CSP_REPORT_ONLY=true operators can watch a new policy without enforcing it; CSP_REPORT_URI
# collects violation reports.
_CSP = {
    "EXCLUDE_URL_PREFIXES": [],
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "font-src": [SELF],
        "connect-src": [SELF],
        "worker-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        **({"report-uri": [env_str("CSP_REPORT_URI", "")]} if env_optional("CSP_REPORT_URI") else {}),
    },
}
if env_bool("CSP_REPORT_ONLY", False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _CSP
else:
    CONTENT_SECURITY_POLICY = _CSP

REST_FRAMEWORK = {
    # JSON (a body nested too deep is a 400, not a 500), forms and multipart uploads
    "DEFAULT_PARSER_CLASSES": [
        "crm.api.parsers.DepthSafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "crm.tenancy.authentication.ApiCredentialAuthentication",
        "crm.tenancy.authentication.TenantSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["crm.tenancy.permissions.HasTenantMembership"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "crm.api.pagination.DefaultPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "crm.api.errors.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "crm.tenancy.throttling.CredentialRateThrottle",
        "crm.tenancy.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "credential": env_rate("API_RATE_PER_KEY", "600/min"),
        "user": env_rate("API_RATE_PER_USER", "300/min"),
    },
    "DEFAULT_VERSIONING_CLASS": "rest_framework.versioning.NamespaceVersioning",
    "ALLOWED_VERSIONS": ["v1"],
    "DEFAULT_VERSION": "v1",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Dealership CRM API",
    "DESCRIPTION": (
        "REST API for dealer-management systems, messaging and call-centre integrations. "
        "Authenticate with `Authorization: Bearer <key>` (tenant API key or personal token). "
        'Every error has the shape `{"error": {"code", "message", "fields"}}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "crm.api.schema.document_errors"],
    "ENUM_NAME_OVERRIDES": {
        "CredentialKindEnum": "crm.tenancy.models.ApiCredential.Kind",
        "CustomerKindEnum": "customers.models.Customer.Kind",
        "OrderKindEnum": "customers.models.Order.Kind",
        "OrderStatusEnum": "customers.models.Order.Status",
        "CustomerSourceEnum": "customers.models.Customer.Source",
        "MileageSourceEnum": "customers.models.MileageReading.Source",
        "ImportKindEnum": "customers.models.ImportJob.Kind",
        "ImportStatusEnum": "customers.models.ImportJob.Status",
        "RoleEnum": "crm.tenancy.roles.Role",
        "StaffRoleEnum": "crm.tenancy.roles.STAFF_ROLE_CHOICES",
        "TicketStatusEnum": "complaints.models.Status",
        "TicketChannelEnum": "complaints.models.Channel",
        "TouchpointChannelEnum": "customers.models.Touchpoint.Channel",
        "FollowupChannelEnum": "followups.models.Channel",
        "FollowupStatusEnum": "followups.models.Status",
        "DispositionEnum": "followups.models.Disposition",
        "LeadSourceEnum": "sales.models.Source",
        "LeadContactDispositionEnum": "sales.serializers.CONTACT_DISPOSITION_CHOICES",
    },
}

# --- Logging ----------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Product settings ---------------------------------------------------------------------------
CRM_DEMO_PASSWORD = env_str("CRM_DEMO_PASSWORD", "Demo-2026-crm")
# Messages to customers: SMS and WeChat leave through HTTP gateways (crm/messaging/channels.py);
# without one, such messages wait in the outbox. E-mail uses the EMAIL_* settings.
SMS_GATEWAY_URL = env_optional("SMS_GATEWAY_URL")
SMS_GATEWAY_TOKEN = env_optional("SMS_GATEWAY_TOKEN")
WECHAT_GATEWAY_URL = env_optional("WECHAT_GATEWAY_URL")
WECHAT_GATEWAY_TOKEN = env_optional("WECHAT_GATEWAY_TOKEN")
# Where staff reach the app: links in e-mails sent by background jobs (SLA warnings) start here.
CRM_SITE_URL = env_str("CRM_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# The Django admin is for platform operators; a non-default path keeps scanners away.
ADMIN_URL = env_str("ADMIN_URL", "admin/")
if not ADMIN_URL.endswith("/") or ADMIN_URL.startswith("/"):
    raise ImproperlyConfigured("ADMIN_URL must look like 'ops-admin/' (no leading slash, one trailing slash).")
AUTH_USER_MODEL = "accounts.User"
