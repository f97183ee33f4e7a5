"""Test settings: real PostgreSQL (two roles), fast hashing, mail kept in memory."""

from crm.settings.base import *  # noqa: F403
from crm.settings.base import DATABASES

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# The test runner migrates as the owner itself (tests/conftest.py); no second alias in tests.
DATABASES.pop("owner", None)
DATABASES["default"]["CONN_MAX_AGE"] = 0
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Tasks run in-process in tests; tests/test_celery_broker.py sends through a real Redis broker.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"
CELERY_RESULT_BACKEND = None
# The isolation suite sends thousands of requests; rate-limit tests lower these themselves.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"credential": "100000/min", "user": "100000/min"},
}
