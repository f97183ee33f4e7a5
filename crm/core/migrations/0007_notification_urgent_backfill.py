"""Notifications made before kinds had an urgency: the kinds that were urgent when this was written
(docs/notifications.md) are marked so, so that their unread ones come first like new ones."""

from django.db import migrations

URGENT_KINDS = ("sla_warning", "sla_breach", "survey_low_score")


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0006_notification_digests_and_preferences"),
    ]

    operations = [
        migrations.RunSQL(
            sql=[("UPDATE core_notification SET urgent = true WHERE kind = ANY(%s)", [list(URGENT_KINDS)])],
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
