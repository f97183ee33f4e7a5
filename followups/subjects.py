"""Follow-ups another area owns: the extension point `followup_subjects` (crm/core/extensions.py).

A sales lead's follow-up (reason `lead`) is worked in the same daily queue as every other call,
but what it is about lives in the sales app. The app registers, in its hooks.py, where the work is
done and what it does with each logged attempt:

    followup_subjects.register(FollowupSubject(name="sales", reason="lead", url=..., attempt_logged=...))

`url(followup)` is the page the queue and the follow-up page link to; `attempt_logged(followup=,
attempt=, actor=)` runs inside the transaction that recorded the attempt (after the follow-up moved on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crm.core.extensions import Contribution, ExtensionPoint


@dataclass(frozen=True, kw_only=True)
class FollowupSubject(Contribution):
    reason: str
    url: Callable[[Any], str | None]
    attempt_logged: Callable[..., None]


followup_subjects: ExtensionPoint[FollowupSubject] = ExtensionPoint("followups.subjects", FollowupSubject)


def subject_for(reason: str) -> FollowupSubject | None:
    return next((subject for subject in followup_subjects.contributions() if subject.reason == reason), None)


def subject_url(followup: Any) -> str | None:
    subject = subject_for(followup.reason)
    return subject.url(followup) if subject is not None else None
