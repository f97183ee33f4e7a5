from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm.core.models import NightlyRun
from crm.core.nightly import nightly_run_tenant, nightly_steps
from crm.tenancy.models import Tenant


class Command(BaseCommand):
    help = "Run the nightly pipeline synchronously (no broker needed), for every dealership or one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="Dealership code; default: every active dealership.")
        parser.add_argument("--date", help="Business date YYYY-MM-DD; default: today in each dealership's time zone.")
        parser.add_argument("--step", action="append", help="Run only this step (repeatable).")
        parser.add_argument("--plan", action="store_true", help="Print the night's steps in order and run nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["plan"]:
            for number, step in enumerate(nightly_steps.contributions(), start=1):
                after = f"  (after {', '.join(step.after)})" if step.after else ""
                self.stdout.write(f"{number:>2}. {step.name}{after}")
            return
        tenants = Tenant.objects.filter(is_active=True).order_by("pk")
        if options["tenant"]:
            tenants = tenants.filter(code=options["tenant"])
            if not tenants.exists():
                raise CommandError(f"No active dealership with code {options['tenant']!r}.")
        try:
            run_date = date.fromisoformat(options["date"]) if options["date"] else None
        except ValueError:
            raise CommandError("--date must be YYYY-MM-DD.") from None
        steps = [s.name for s in nightly_steps.contributions()]
        unknown = set(options["step"] or []) - set(steps)
        if unknown:
            raise CommandError(f"Unknown step(s): {', '.join(sorted(unknown))}. Known: {', '.join(steps) or 'none'}.")
        if not steps:
            self.stdout.write("No nightly steps are registered yet.")
        failed = 0
        for tenant in tenants:
            runs = nightly_run_tenant(
                tenant_id=tenant.pk, trigger=NightlyRun.Trigger.COMMAND, run_date=run_date, only=options["step"]
            )
            for run in runs:
                failed += run.status == NightlyRun.Status.FAILED
                self.stdout.write(
                    f"{tenant.code:<16} {run.step:<32} {run.status:<10} rows={run.rows} {run.duration_ms} ms"
                )
        if failed:
            raise CommandError(f"{failed} step(s) failed; see Settings → Nightly runs, or the log.")
