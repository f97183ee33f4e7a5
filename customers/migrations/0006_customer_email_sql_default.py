"""A database default for customers.email, so set-based SQL and COPY that name no e-mail column
(the benchmarks' loaders, operators' scripts) keep working. The ORM always writes the field."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("customers", "0005_customer_email")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE customers_customer ALTER COLUMN email SET DEFAULT ''",
            "ALTER TABLE customers_customer ALTER COLUMN email DROP DEFAULT",
        )
    ]
