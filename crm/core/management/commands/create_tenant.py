from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm.tenancy.services import tenant_create


class Command(BaseCommand):
    help = "Create a dealership and invite its first tenant admin by email."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--code", required=True)
        parser.add_argument("--time-zone", default="Asia/Shanghai")
        parser.add_argument("--admin-email")
        parser.add_argument("--admin-name", default="")
        parser.add_argument("--site-url", default="http://127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = tenant_create(
                name=options["name"],
                code=options["code"],
                time_zone=options["time_zone"],
                first_admin_email=options["admin_email"],
                first_admin_name=options["admin_name"],
                site_url=options["site_url"],
            )
        except ValidationError as error:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())) from None
        self.stdout.write(self.style.SUCCESS(f"Created {tenant}."))
