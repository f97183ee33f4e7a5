"""Mark customers whose orders changed, whatever wrote them (services, imports, raw SQL, COPY).

Statement-level triggers with transition tables: one INSERT … SELECT DISTINCT per statement, so a
bulk import of 100,000 orders costs one set-based write here, not 100,000. The nightly engine
re-aggregates exactly these customers (segmentation/engine.py).
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION segmentation_mark_customers() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO segmentation_dirtycustomer (tenant_id, customer_id)
        SELECT DISTINCT tenant_id, customer_id FROM new_rows
        ON CONFLICT (tenant_id, customer_id) DO NOTHING;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO segmentation_dirtycustomer (tenant_id, customer_id)
        SELECT DISTINCT tenant_id, customer_id FROM old_rows
        ON CONFLICT (tenant_id, customer_id) DO NOTHING;
    ELSE
        INSERT INTO segmentation_dirtycustomer (tenant_id, customer_id)
        SELECT DISTINCT x.tenant_id, x.customer_id
          FROM old_rows o
          JOIN new_rows n ON n.id = o.id
         CROSS JOIN LATERAL (VALUES (o.tenant_id, o.customer_id), (n.tenant_id, n.customer_id)) AS x(tenant_id, customer_id)
         WHERE (o.customer_id, o.status, o.amount, o.ordered_on, o.kind)
               IS DISTINCT FROM (n.customer_id, n.status, n.amount, n.ordered_on, n.kind)
        ON CONFLICT (tenant_id, customer_id) DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER segmentation_orders_inserted AFTER INSERT ON customers_order
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION segmentation_mark_customers();
CREATE TRIGGER segmentation_orders_updated AFTER UPDATE ON customers_order
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION segmentation_mark_customers();
CREATE TRIGGER segmentation_orders_deleted AFTER DELETE ON customers_order
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION segmentation_mark_customers();
"""

REVERSE = """
DROP TRIGGER IF EXISTS segmentation_orders_inserted ON customers_order;
DROP TRIGGER IF EXISTS segmentation_orders_updated ON customers_order;
DROP TRIGGER IF EXISTS segmentation_orders_deleted ON customers_order;
DROP FUNCTION IF EXISTS segmentation_mark_customers();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("segmentation", "0001_initial"),
        ("customers", "0004_search_under_rls"),
    ]

    operations = [migrations.RunSQL(FUNCTION, REVERSE)]
