"""The orders-per-customer index carries amount, kind and status, so segmentation's nightly
re-aggregation of a changed customer reads their orders index-only (about one index page instead of
a heap page per order; benchmarks/README.md).

Built CONCURRENTLY, the new index first: orders keep being written and read by an index on
(tenant, customer, date) throughout, on a table of millions of rows.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("customers", "0007_mileage_indexes_index_only"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="order",
            index=models.Index(
                fields=["tenant", "customer", "ordered_on"],
                include=("amount", "kind", "status"),
                name="order_customer_history",
            ),
        ),
        RemoveIndexConcurrently(
            model_name="order",
            name="order_tenant_customer_date",
        ),
    ]
