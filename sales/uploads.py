"""A signed test-drive agreement: a PDF or a photo of it, at most 10 MB (crm/core/uploads.py)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from crm.core.uploads import JPEG, PDF, PNG, allowed_extensions, check_upload

KINDS = (PDF, JPEG, PNG)


def check_agreement(upload: Any) -> str:
    return check_upload(
        upload,
        kinds=KINDS,
        field="agreement",
        refused=_("The agreement must be a PDF or a photo (%(allowed)s).") % {"allowed": allowed_extensions(KINDS)},
    )
