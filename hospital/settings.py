"""The one settings module. Every knob comes from an environment variable with a documented
default (see docs/configuration.md); the defaults give the embedded demo set-up: SQLite, an
in-process channel layer and tasks that run in-process.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("WARDWISE_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true or false)")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from exc


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from exc


def env_gc_thresholds(name: str, default: tuple[int, int, int]) -> tuple[int, int, int] | None:
    """Three positive integers for gc.set_threshold, or "off" (None: CPython's own settings)."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    if value.strip().lower() == "off":
        return None
    try:
        numbers = tuple(int(part) for part in value.split(","))
    except ValueError:
        numbers = ()
    if len(numbers) != 3 or min(numbers) <= 0:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not three positive integers like 10000,10,10 (or off)"
        )
    return numbers


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


PRODUCTION = env_bool("WARDWISE_PRODUCTION", False)
DEBUG = env_bool("DEBUG", False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be false when WARDWISE_PRODUCTION is true")

_DEVELOPMENT_SECRET_KEY = "wardwise-development-only-key-never-use-in-production-0123456789"  # noqa: S105  (refused in production)  # nosec B105
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when WARDWISE_PRODUCTION is true")
    SECRET_KEY = _DEVELOPMENT_SECRET_KEY
elif PRODUCTION and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 varied characters in production")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "web.apps.WardwiseAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "channels",
    "auditlog",
    "hospital.apps.HospitalConfig",
    "tracking",
    "environment",
    "alerts",
    "web.apps.WebConfig",
    "import_export",
    "integrations",
    "axes",
    "workflows.apps.WorkflowsConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    "web.middleware.SecurityHeadersMiddleware",
    # Last, as django-axes requires: refuses locked-out sign-ins.
    "axes.middleware.AxesMiddleware",
]

if PRODUCTION:
    # Static files straight from the ASGI servers, compressed and cache-busted (collectstatic).
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "hospital.urls"
WSGI_APPLICATION = "hospital.wsgi.application"
ASGI_APPLICATION = "hospital.asgi.application"

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
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'wardwise.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int(
        "DATABASE_CONNECT_TIMEOUT", 5
    )
    # Statements of hot paths run on server-side binding cursors (hospital.prepared); psycopg
    # prepares one once its text has run this many times on a connection (0: at once; "off":
    # never, e.g. behind a PgBouncer without max_prepared_statements; Django's own client-side
    # cursors are never prepared).
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = (
        None
        if os.environ.get("DATABASE_PREPARE_THRESHOLD", "").strip().lower() == "off"
        else env_int("DATABASE_PREPARE_THRESHOLD", 2)
    )
    # Under ASGI every concurrent sync request runs in its own thread, and a persistent
    # connection per thread exhausts PostgreSQL's max_connections under load (hundreds of
    # gateways posting at once). A per-process pool (psycopg_pool) bounds the connections and
    # hands them back at the end of each request; DATABASE_POOL_MAX=0 turns it off.
    _pool_max = env_int("DATABASE_POOL_MAX", 8)
    if _pool_max > 0:
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": 1,
            "max_size": _pool_max,
            "timeout": env_float("DATABASE_POOL_TIMEOUT_S", 10.0),
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    # channels_redis waits for messages with BZPOPMIN for 5 s; redis-py's default socket timeout
    # is also 5 s, so an idle websocket's read timed out and the consumer died (the console was
    # dropped every few seconds). Reads must outlast the blocking pop.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
                "capacity": 1000,
                "expiry": 30,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "wardwise",
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
# One task at a time per worker process: a prefetched shard task would wait behind a busy one.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
# Browser libraries from the pinned npm packages (package.json, `make node`), served as static
# files under vendor/: nothing is copied into the repository by hand (docs/ui.md).
NODE_MODULES = BASE_DIR / "node_modules"
STATICFILES_DIRS = [
    ("vendor/leaflet", NODE_MODULES / "leaflet" / "dist"),
    ("vendor/chart.js", NODE_MODULES / "chart.js" / "dist"),
    ("vendor/swagger-ui", NODE_MODULES / "swagger-ui-dist"),
]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "hospital.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Wardwise API",
    "DESCRIPTION": "Equipment location and cold-chain monitoring for hospitals.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The API description is for the hospital's staff (a role), not any account or device.
    "SERVE_PERMISSIONS": ["hospital.permissions.ClinicalStaff"],
    # Swagger UI from the pinned npm package (package.json), not a CDN's "latest".
    "SWAGGER_UI_DIST": "/static/vendor/swagger-ui",
    "SWAGGER_UI_FAVICON_HREF": "/static/vendor/swagger-ui/favicon-32x32.png",
}

# Security headers (docs/security.md). The Content-Security-Policy and Permissions-Policy come
# from web.middleware.SecurityHeadersMiddleware.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600)
# The pages' script sends the CSRF token from this cookie (web/static/web/js/common.js), so it is
# readable by script; SameSite keeps it off cross-site requests.
CSRF_COOKIE_SAMESITE = "Strict"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Host-sessionid"

# Sign-in lockout (django-axes): after WARDWISE_LOGIN_FAILURE_LIMIT failed attempts for one user
# name from one client address, that pair is refused (429) for WARDWISE_LOGIN_COOLOFF_MIN
# minutes; a success resets the count. Per pair, so nobody can lock a colleague out from
# another workstation. Behind the reverse proxy the client address is taken from the
# X-Forwarded-For entry WARDWISE_PROXY_HOPS from the right (nginx appends the address it saw).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("WARDWISE_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("WARDWISE_LOGIN_COOLOFF_MIN", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "web.middleware.client_ip"
AXES_SENSITIVE_PARAMETERS = ["password", "old_password", "new_password1", "new_password2"]
WARDWISE_PROXY_HOPS = env_int("WARDWISE_PROXY_HOPS", 1 if PRODUCTION else 0)
if AXES_FAILURE_LIMIT < 1:
    raise ImproperlyConfigured("WARDWISE_LOGIN_FAILURE_LIMIT must be at least 1")

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

WARDWISE = {
    # How long an asset may stay unheard before it is reported missing.
    "ASSET_MISSING_AFTER_S": env_int("WARDWISE_ASSET_MISSING_AFTER_S", 15 * 60),
    # How long a scanner may stay silent before it is reported offline.
    "SCANNER_OFFLINE_AFTER_S": env_int("WARDWISE_SCANNER_OFFLINE_AFTER_S", 5 * 60),
    # A gateway's batch counts reach its health row at most this often (they gather in Redis
    # in between; the offline check writes them all), so a batch costs no database write.
    "SCANNER_HEALTH_WRITE_S": env_float("WARDWISE_SCANNER_HEALTH_WRITE_S", 5.0),
    # Days of compact position history kept in the database.
    "POSITION_HISTORY_DAYS": env_int("WARDWISE_POSITION_HISTORY_DAYS", 90),
    # A new history row is written when this much event time has passed (or the zone changed,
    # or the asset moved more than POSITION_SAMPLE_MOVE_M).
    "POSITION_SAMPLE_INTERVAL_S": env_int("WARDWISE_POSITION_SAMPLE_INTERVAL_S", 60),
    "POSITION_SAMPLE_MOVE_M": env_float("WARDWISE_POSITION_SAMPLE_MOVE_M", 2.0),
    # A heard tag's last-seen time reaches the database with each of its positions (every second
    # or two) and, between them, at most this often: most readings produce no position, and
    # touching the asset's row for each of them was most of the pipeline's row updates.
    "LAST_SEEN_WRITE_S": env_float("WARDWISE_LAST_SEEN_WRITE_S", 5.0),
    # Shards of the tag space; each is processed by one worker at a time, in event-time order.
    # About two per localizing worker process: every extra shard lengthens each shard's drain
    # round, and so the latency (docs/deployment.md, "How many shards"). Lowering it is safe:
    # the readings left in the higher shards are still drained (kick_idle_shards).
    "SHARDS": env_int("WARDWISE_SHARDS", 8),
    # Raw readings kept per shard stream in Redis (bounded retention).
    "STREAM_MAXLEN": env_int("WARDWISE_STREAM_MAXLEN", 200_000),
    # Admission control: a batch touching a shard whose oldest unprocessed entry is older than
    # this is refused whole (503 + Retry-After; the gateway keeps it), so the backlog stays
    # bounded and nothing answered 202 is trimmed unprocessed (docs/pipeline.md). 0: off.
    "MAX_BACKLOG_S": env_float("WARDWISE_MAX_BACKLOG_S", 60.0),
    # Readings are held back in event time so slow scanners' readings of the same moment still
    # arrive in order: each shard holds them as long as its readings were seen to arrive late
    # over the last LATE_ALLOWANCE_WINDOW_S (times 1.5, plus 0.05 s), at least
    # LATE_ALLOWANCE_MIN_S and at most LATE_ALLOWANCE_S (tracking/lateness.py; MIN equal to the
    # maximum: a fixed hold). A reading waits at most HOLD_MAX_S of wall time.
    "LATE_ALLOWANCE_S": env_float("WARDWISE_LATE_ALLOWANCE_S", 0.5),
    "LATE_ALLOWANCE_MIN_S": env_float("WARDWISE_LATE_ALLOWANCE_MIN_S", 0.1),
    "LATE_ALLOWANCE_WINDOW_S": env_float("WARDWISE_LATE_ALLOWANCE_WINDOW_S", 30.0),
    "HOLD_MAX_S": env_float("WARDWISE_HOLD_MAX_S", 1.5),
    # Ingestion limits: readings per batch, body size, clock skew, age, requests per second.
    "MAX_BATCH_READINGS": env_int("WARDWISE_MAX_BATCH_READINGS", 5000),
    "MAX_BODY_BYTES": env_int("WARDWISE_MAX_BODY_BYTES", 1024 * 1024),
    "MAX_FUTURE_SKEW_S": env_int("WARDWISE_MAX_FUTURE_SKEW_S", 60),
    "MAX_READING_AGE_S": env_int("WARDWISE_MAX_READING_AGE_S", 24 * 3600),
    "DEVICE_RATE_PER_S": env_int("WARDWISE_DEVICE_RATE_PER_S", 20),
    # Learn scanner calibration online in the workers (off: offsets come from the database,
    # maintained by `manage.py calibrate_scanners`; see docs/localization.md).
    "SELF_CALIBRATION": env_bool("WARDWISE_SELF_CALIBRATION", False),
    # Seconds a settled parked tag whose radio has not changed may go without a new solve
    # (0: solve every interval). Saves worker CPU; costs a little room accuracy on real data.
    "QUIET_SOLVE_MAX_S": env_float("WARDWISE_QUIET_SOLVE_MAX_S", 0.0),
    # Pipeline workers freeze their start-up heap and collect garbage with these thresholds
    # (hospital/gc_tuning.py); "off" keeps CPython's (700, 10, 10) and freezes nothing.
    "GC_THRESHOLDS": env_gc_thresholds("WARDWISE_GC_THRESHOLDS", (10_000, 10, 10)),
    # Find-nearest walking graph (hospital/wayfinding.py): the narrowest shared wall that counts
    # as a door, metres per level by stairs or lift, and the cost of changing floors where a
    # floor has no stairs or lift drawn.
    "DOOR_WIDTH_M": env_float("WARDWISE_DOOR_WIDTH_M", 0.9),
    "LEVEL_CHANGE_M": env_float("WARDWISE_LEVEL_CHANGE_M", 15.0),
    "FLOOR_CHANGE_COST_M": env_float("WARDWISE_FLOOR_CHANGE_COST_M", 40.0),
    # Honest location (tracking/confidence.py, docs/ui.md): an estimate confirms its room only
    # with at least this zone posterior (the engine's own bar for moving a parked tag to a new
    # zone), this many scanners (one gives a range, not a side of a wall) and a 68 % accuracy
    # radius of at most this many metres (about three patient rooms of area); an asset unheard
    # for LOCATION_STALE_AFTER_S is stale. Otherwise it is shown in its last confirmed room.
    "LOCATION_CONFIRM_PROBABILITY": env_float("WARDWISE_LOCATION_CONFIRM_PROBABILITY", 0.85),
    "LOCATION_CONFIRM_MIN_SCANNERS": env_int("WARDWISE_LOCATION_CONFIRM_MIN_SCANNERS", 2),
    "LOCATION_CONFIRM_MAX_ACCURACY_M": env_float("WARDWISE_LOCATION_CONFIRM_MAX_ACCURACY_M", 5.0),
    "LOCATION_STALE_AFTER_S": env_int("WARDWISE_LOCATION_STALE_AFTER_S", 60),
}
for _name, _ok, _rule in (
    ("LOCATION_CONFIRM_PROBABILITY", lambda v: 0.0 < v <= 1.0, "in (0, 1]"),
    ("LOCATION_CONFIRM_MIN_SCANNERS", lambda v: v >= 1, "at least 1"),
    ("LOCATION_CONFIRM_MAX_ACCURACY_M", lambda v: v > 0.0, "positive"),
    ("LOCATION_STALE_AFTER_S", lambda v: v > 0, "positive"),
):
    if not _ok(WARDWISE[_name]):
        raise ImproperlyConfigured(f"WARDWISE_{_name}={WARDWISE[_name]!r} must be {_rule}")

# Observability (hospital/observability.py, docs/api.md): LOG_FORMAT=json for one JSON object per
# log line; /metrics answers only a bearer token equal to METRICS_TOKEN (off when unset).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower() or "plain"
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be plain or json")
if LOG_FORMAT == "json":
    LOGGING["formatters"]["json"] = {"()": "hospital.observability.JsonFormatter"}
    LOGGING["handlers"]["console"]["formatter"] = "json"
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
HEALTH_WORKER_PING_TIMEOUT_S = env_float("WARDWISE_HEALTH_PING_TIMEOUT_S", 1.0)
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {
    "ZoneKindEnum": "hospital.models.ZoneKind",
    "ScannerKindEnum": "tracking.models.ScannerKind",
    "AssetStatusEnum": "tracking.models.AssetStatus",
    "LocationQualityEnum": "tracking.confidence.QUALITY_CHOICES",
    "LocationQualityReasonEnum": "tracking.confidence.REASON_CHOICES",
}

# MQTT gateway bridge (`manage.py mqtt_bridge`, integrations/bridge.py, docs/mqtt.md).
MQTT = {
    "URL": os.environ.get("MQTT_URL", "mqtt://127.0.0.1:1883"),
    "TOPICS": env_list(
        "MQTT_TOPICS",
        ["wardwise/+/rssi", "wardwise/+/rssi/+", "wardwise/+/minew", "wardwise/+/minew/+"],
    ),
    "USERNAME": os.environ.get("MQTT_USERNAME", ""),
    "PASSWORD": os.environ.get("MQTT_PASSWORD", ""),
    "CLIENT_ID": os.environ.get("MQTT_CLIENT_ID", "wardwise-bridge"),
    "QOS": env_int("MQTT_QOS", 1),
    "GATEWAY_AUTH": os.environ.get("MQTT_GATEWAY_AUTH", "token"),
    "TLS_CA_FILE": os.environ.get("MQTT_TLS_CA_FILE", ""),
    "TLS_CERT_FILE": os.environ.get("MQTT_TLS_CERT_FILE", ""),
    "TLS_KEY_FILE": os.environ.get("MQTT_TLS_KEY_FILE", ""),
}

# CSV import and export in the admin need the model's own permissions (django-import-export
# lets every admin user import and export otherwise): importing adds and changes rows.
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "change"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"

# Outbound webhooks (integrations/webhooks.py, docs/webhooks.md): retry back-off base and cap.
WARDWISE_WEBHOOKS = {
    "RETRY_BASE_S": env_float("WARDWISE_WEBHOOK_RETRY_BASE_S", 10.0),
    "RETRY_MAX_S": env_float("WARDWISE_WEBHOOK_RETRY_MAX_S", 3600.0),
}

# Equipment workflows (workflows/, docs/workflows.md): battery levels that alert and that a
# forecast counts down to, the battery trend window, and how early maintenance counts as due.
WARDWISE_WORKFLOWS = {
    "BATTERY_LOW_PCT": env_float("WARDWISE_BATTERY_LOW_PCT", 15.0),
    "BATTERY_REPLACE_PCT": env_float("WARDWISE_BATTERY_REPLACE_PCT", 10.0),
    "BATTERY_WINDOW_DAYS": env_int("WARDWISE_BATTERY_WINDOW_DAYS", 90),
    "MAINTENANCE_SOON_DAYS": env_int("WARDWISE_MAINTENANCE_SOON_DAYS", 14),
}
