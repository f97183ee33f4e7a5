"""Incremental scoring: the engine keeps its edges and counts between runs (engine_state), walks new
indexes to move them, and learns of every change that can move a customer's score through marks.

Marks, besides the orders trigger of 0002:
- a customer inserted (statement-level, transition table: one INSERT … SELECT per statement);
- a customer's last visit, red/black list flag, churn reason or merge changed (row-level, only when
  one of those columns changes; the engine's own writes of stage and class never fire it);
- a touchpoint recorded (a prospect's first contact moves its relationship class).
A customer deleted outright cannot be taken out of the kept counts, so it makes the dealership's
next run score everyone again.
"""

import django.db.models
from django.db import migrations, models

FUNCTION = """
CREATE OR REPLACE FUNCTION segmentation_mark_new_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'customers_customer' THEN
        INSERT INTO segmentation_dirtycustomer (tenant_id, customer_id)
        SELECT tenant_id, id FROM new_rows
        ON CONFLICT (tenant_id, customer_id) DO NOTHING;
    ELSE
        INSERT INTO segmentation_dirtycustomer (tenant_id, customer_id)
        SELECT DISTINCT tenant_id, customer_id FROM new_rows
        ON CONFLICT (tenant_id, customer_id) DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION segmentation_mark_customer() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO segmentation_dirtycustomer (tenant_id, customer_id) VALUES (NEW.tenant_id, NEW.id)
    ON CONFLICT (tenant_id, customer_id) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION segmentation_forget_state() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE segmentation_segmentationsettings SET engine_state = NULL
     WHERE tenant_id IN (SELECT DISTINCT tenant_id FROM old_rows);
    RETURN NULL;
END
$$;

CREATE TRIGGER segmentation_customers_inserted AFTER INSERT ON customers_customer
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION segmentation_mark_new_rows();
CREATE TRIGGER segmentation_customer_changed
    AFTER UPDATE OF last_visit_on, list_flag, churn_reason, merged_into_id ON customers_customer
    FOR EACH ROW
    WHEN ((OLD.last_visit_on, OLD.list_flag, OLD.churn_reason, OLD.merged_into_id)
          IS DISTINCT FROM (NEW.last_visit_on, NEW.list_flag, NEW.churn_reason, NEW.merged_into_id))
    EXECUTE FUNCTION segmentation_mark_customer();
CREATE TRIGGER segmentation_customers_deleted AFTER DELETE ON customers_customer
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION segmentation_forget_state();
CREATE TRIGGER segmentation_touchpoints_inserted AFTER INSERT ON customers_touchpoint
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION segmentation_mark_new_rows();
"""

REVERSE = """
DROP TRIGGER IF EXISTS segmentation_customers_inserted ON customers_customer;
DROP TRIGGER IF EXISTS segmentation_customer_changed ON customers_customer;
DROP TRIGGER IF EXISTS segmentation_customers_deleted ON customers_customer;
DROP TRIGGER IF EXISTS segmentation_touchpoints_inserted ON customers_touchpoint;
DROP FUNCTION IF EXISTS segmentation_mark_new_rows();
DROP FUNCTION IF EXISTS segmentation_mark_customer();
DROP FUNCTION IF EXISTS segmentation_forget_state();
"""

BUYERS = models.Q(("orders_total__gt", 0))


class Migration(migrations.Migration):
    dependencies = [
        ("segmentation", "0002_order_change_trigger"),
        ("customers", "0006_customer_email_sql_default"),
    ]

    operations = [
        migrations.AddField(
            model_name="segmentationsettings",
            name="engine_state",
            field=models.JSONField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="customervalue",
            name="monetary_cents",
            field=models.BigIntegerField(db_default=0, default=0, editable=False),
        ),
        migrations.RunSQL(
            "UPDATE segmentation_customervalue SET monetary_cents = round(monetary * 100)::bigint",
            migrations.RunSQL.noop,
        ),
        migrations.AddField(
            model_name="customervalue",
            name="value_key",
            field=models.BigIntegerField(blank=True, editable=False, null=True, verbose_name="value rank key"),
        ),
        migrations.AddField(
            model_name="customervalue",
            name="satisfied",
            field=models.BooleanField(db_default=False, default=False, verbose_name="satisfied"),
        ),
        migrations.AddField(
            model_name="customervalue",
            name="dissatisfied",
            field=models.BooleanField(db_default=False, default=False, verbose_name="dissatisfied"),
        ),
        migrations.AddField(
            model_name="customervalue",
            name="referrals",
            field=models.PositiveIntegerField(db_default=0, default=0, verbose_name="referrals"),
        ),
        migrations.AddIndex(
            model_name="customervalue",
            index=models.Index(condition=BUYERS, fields=["tenant", "last_activity_on"], name="customervalue_recency"),
        ),
        migrations.AddIndex(
            model_name="customervalue",
            index=models.Index(condition=BUYERS, fields=["tenant", "frequency"], name="customervalue_frequency"),
        ),
        migrations.AddIndex(
            model_name="customervalue",
            index=models.Index(condition=BUYERS, fields=["tenant", "monetary_cents"], name="customervalue_monetary"),
        ),
        migrations.AddIndex(
            model_name="customervalue",
            index=models.Index(
                condition=models.Q(("value_key__isnull", False)),
                fields=["tenant", "value_key"],
                name="customervalue_rank",
            ),
        ),
        migrations.AddIndex(
            model_name="customervalue",
            index=models.Index(
                condition=django.db.models.Q(("satisfied", True), ("dissatisfied", True), ("referrals__gt", 0), _connector="OR"),
                fields=["tenant", "customer"],
                name="customervalue_signals",
            ),
        ),
        migrations.RunSQL(FUNCTION, REVERSE),
    ]
