from __future__ import annotations

import time
from datetime import date
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from config.demo import demo_exists, seed_demo


class Command(BaseCommand):
    help = "Create two demo dealerships with staff for every role, customers, vehicles and three years of orders."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--customers", type=int, default=3000, help="Customers per dealership (default 3000).")
        parser.add_argument("--seed", type=int, default=4242, help="Random seed: same seed, same data.")
        parser.add_argument("--today", help="Pretend today is YYYY-MM-DD (default: today).")

    def handle(self, *args: Any, **options: Any) -> None:
        if demo_exists():
            self.stdout.write("Demo dealerships already exist; nothing to do (`make demo-reset` starts over).")
            return
        started = time.monotonic()
        today = date.fromisoformat(options["today"]) if options["today"] else date.today()
        result = seed_demo(
            customers_per_dealership=options["customers"], seed=options["seed"], today=today, progress=self.stdout.write
        )
        elapsed = time.monotonic() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {result.customers} customers, {result.vehicles} vehicles, "
                f"{result.orders} orders in {elapsed:.1f} s."
            )
        )
        self.stdout.write(f"\nDemo sign-ins (password for all: {settings.CRM_DEMO_PASSWORD}):")
        for dealership, role, email in result.sign_ins:
            self.stdout.write(f"  {email:<40} {role:<28} {dealership}")
        self.stdout.write("\nDemo integration API keys (shown once; use as 'Authorization: Bearer <key>'):")
        for code, key in result.api_keys:
            self.stdout.write(f"  {code:<12} {key}")
