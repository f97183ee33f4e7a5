"""Waits on the customer are kept exactly (an interval) instead of in whole minutes rounded
half-to-even; existing totals carry over as whole minutes."""

import datetime

from django.db import migrations, models

# The owner is subject to the forced row-level security like everyone: lifted for this one
# statement (crm.tenancy.rls forces it again after every migrate anyway).
CARRY_OVER = """
ALTER TABLE complaints_ticket NO FORCE ROW LEVEL SECURITY;
UPDATE complaints_ticket SET paused_duration = make_interval(mins => paused_minutes) WHERE paused_minutes <> 0;
ALTER TABLE complaints_ticket FORCE ROW LEVEL SECURITY;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("complaints", "0002_ticket_source_survey"),
    ]

    operations = [
        migrations.AddField(
            model_name="ticket",
            name="paused_duration",
            field=models.DurationField(
                db_default=datetime.timedelta(0),
                default=datetime.timedelta(0),
                editable=False,
                verbose_name="business time waited",
            ),
        ),
        migrations.RunSQL(CARRY_OVER, migrations.RunSQL.noop),
        migrations.RemoveField(
            model_name="ticket",
            name="paused_minutes",
        ),
    ]
