"""Settings are split: base (shared), dev (make demo), test (pytest) and production.

DJANGO_SETTINGS_MODULE chooses one; manage.py defaults to config.settings.dev.
"""
