"""The dealership foreign keys of CustomerValue and ValueHistory lose their single-column indexes.

Every other index of both tables leads with tenant_id, so the key's checks are served without them,
and the nightly run, which rewrites a few thousand rows of each table, maintains one index entry
less per row (benchmarks/README.md). Dropped CONCURRENTLY: both tables are read while this runs.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "customervalue": ("segmentation_customervalue", "segmentation_customervalue_tenant_id_d80315fd"),
    "valuehistory": ("segmentation_valuehistory", "segmentation_valuehistory_tenant_id_caea0d48"),
}


def _operations() -> list[migrations.operations.base.Operation]:
    operations = []
    for model_name, (table, index) in INDEXES.items():
        operations.append(
            migrations.SeparateDatabaseAndState(
                state_operations=[
                    migrations.AlterField(
                        model_name=model_name,
                        name="tenant",
                        field=models.ForeignKey(
                            db_index=False,
                            editable=False,
                            on_delete=django.db.models.deletion.PROTECT,
                            related_name="+",
                            to="tenancy.tenant",
                            verbose_name="dealership",
                        ),
                    )
                ],
                database_operations=[
                    migrations.RunSQL(
                        f"DROP INDEX CONCURRENTLY IF EXISTS {index}",
                        reverse_sql=f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {index} ON {table} (tenant_id)",
                    )
                ],
            )
        )
    return operations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("segmentation", "0003_incremental_scoring"),
        ("tenancy", "0005_audit_segmentation_settings"),
    ]

    operations = _operations()
