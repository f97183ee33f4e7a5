"""The Celery app. Tasks are autodiscovered from every app's tasks.py; the beat schedule is below."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")

app = Celery("crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The whole beat schedule, in one place.
app.conf.beat_schedule = {
    # Every 15 minutes: start the nightly pipeline for each dealership whose local night it is.
    "nightly-fan-out": {"task": "core.nightly_fan_out", "schedule": crontab(minute="*/15")},
    # Every 5 minutes: complaint SLA warnings (80%) and escalations (breach), once per stage.
    "complaints-sla-check": {"task": "complaints.sla_check_fan_out", "schedule": crontab(minute="*/5")},
    # Every minute: send what is due in each dealership's outbox (survey invitations, greetings).
    "outbox-send": {"task": "messaging.outbox_fan_out", "schedule": crontab(minute="*")},
    # Every 15 minutes: the daily notification digests of each dealership past its local 07:00.
    "notifications-digest": {"task": "core.notifications_digest_fan_out", "schedule": crontab(minute="*/15")},
}
