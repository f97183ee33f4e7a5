"""Test settings: real PostgreSQL (two roles), fast hashing, mail kept in memory."""

import os
import tempfile
from pathlib import Path

from config.settings.base import *  # noqa: F403
from config.settings.base import DATABASES

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# The test runner migrates as the owner itself (tests/conftest.py); no second alias in tests.
DATABASES.pop("owner", None)
DATABASES["default"]["CONN_MAX_AGE"] = 0
# Uploaded files (imports, complaint attachments) go to a throw-away folder, not the checkout.
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="crm-test-media-"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Tasks run in-process in tests. tests/test_celery_broker.py starts a real worker process with
# CRM_TEST_BROKER_URL pointing at Redis, and sends to it through the same broker.
_test_broker = os.environ.get("CRM_TEST_BROKER_URL") or None
CELERY_BROKER_URL = _test_broker or "memory://"
CELERY_RESULT_BACKEND = _test_broker
CELERY_TASK_ALWAYS_EAGER = _test_broker is None
# The isolation suite sends thousands of requests; rate-limit tests lower these themselves.
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"credential": "100000/min", "user": "100000/min"},
}
