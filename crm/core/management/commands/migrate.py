"""`migrate` that runs as the schema-owning role when DATABASE_OWNER_URL is set.

The application role (DATABASE_URL) owns no table, so it cannot run DDL; the owner role runs
the migrations, then `crm.tenancy.rls` applies row-level security and grants the app role.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.commands.migrate import Command as DjangoMigrateCommand
from django.db import DEFAULT_DB_ALIAS


class Command(DjangoMigrateCommand):
    def handle(self, *args: Any, **options: Any) -> None:
        if options.get("database") == DEFAULT_DB_ALIAS and "owner" in settings.DATABASES:
            options["database"] = "owner"
            if options.get("verbosity", 1) >= 1:
                self.stdout.write(f"Migrating as the owning role ({settings.DATABASES['owner'].get('USER')}).")
        super().handle(*args, **options)
