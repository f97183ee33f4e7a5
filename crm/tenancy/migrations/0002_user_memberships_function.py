"""crm_user_memberships(user_id): the one sanctioned cross-tenant read.

Memberships are behind row-level security, yet at sign-in (before any tenant is chosen) we
must know which dealerships a user belongs to. This function runs with its owner's rights
(the schema owner, BYPASSRLS) and returns only the given user's active memberships in active
dealerships, and only tenant id and role. The application role may execute it; it cannot read
the table directly without a tenant.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION crm_user_memberships(p_user_id bigint)
RETURNS TABLE (tenant_id bigint, role varchar)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT m.tenant_id, m.role
      FROM tenancy_membership m
      JOIN tenancy_tenant t ON t.id = m.tenant_id
     WHERE m.user_id = p_user_id AND m.is_active AND t.is_active AND NOT m.is_service_account
     ORDER BY t.name
$$;
REVOKE ALL ON FUNCTION crm_user_memberships(bigint) FROM PUBLIC;
"""

DROP = "DROP FUNCTION IF EXISTS crm_user_memberships(bigint);"


class Migration(migrations.Migration):
    dependencies = [("tenancy", "0001_initial")]

    operations = [migrations.RunSQL(CREATE, DROP)]
