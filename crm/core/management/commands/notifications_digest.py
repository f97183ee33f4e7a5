from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm.core.notifications import notifications_digest
from crm.tenancy.context import tenant_context
from crm.tenancy.models import Tenant


class Command(BaseCommand):
    help = (
        "Make the daily notification digests now (no broker needed), for every dealership or one: "
        "what beat's core.notifications_digest_fan_out does every 15 minutes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="Dealership code; default: every active dealership.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenants = Tenant.objects.filter(is_active=True).order_by("pk")
        if options["tenant"]:
            tenants = tenants.filter(code=options["tenant"])
            if not tenants.exists():
                raise CommandError(f"No active dealership with code {options['tenant']!r}.")
        for tenant in tenants:
            with tenant_context(tenant.pk):
                written = notifications_digest()
            self.stdout.write(f"{tenant.code:<16} digests={written}")
