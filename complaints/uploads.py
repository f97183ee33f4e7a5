"""What a complaint may have attached: photos, PDFs and recordings, at most 10 MB (crm/core/uploads.py)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from crm.core.uploads import JPEG, M4A, MP3, MP4, PDF, PNG, allowed_extensions
from crm.core.uploads import check_upload as _check

KINDS = (JPEG, PNG, PDF, MP3, M4A, MP4)
ALLOWED = allowed_extensions(KINDS)


def check_upload(upload: Any) -> str:
    """The upload's content type, or ApplicationError naming the field `file`."""
    return _check(
        upload,
        kinds=KINDS,
        refused=_("Only photos, PDFs and recordings can be attached (%(allowed)s).") % {"allowed": ALLOWED},
    )
