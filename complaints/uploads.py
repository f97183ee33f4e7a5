"""Attachment checks: size, and what the file really is (by its first bytes, not its name)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from crm.core.errors import ApplicationError

MAX_BYTES = 10 * 1024 * 1024

# (content type, extensions, test on the first bytes)
KINDS: tuple[tuple[str, tuple[str, ...], Any], ...] = (
    ("image/jpeg", (".jpg", ".jpeg"), lambda head: head.startswith(b"\xff\xd8\xff")),
    ("image/png", (".png",), lambda head: head.startswith(b"\x89PNG\r\n\x1a\n")),
    ("application/pdf", (".pdf",), lambda head: head.startswith(b"%PDF-")),
    ("audio/mpeg", (".mp3",), lambda head: head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3")),
    ("audio/mp4", (".m4a",), lambda head: head[4:8] == b"ftyp"),
    ("video/mp4", (".mp4",), lambda head: head[4:8] == b"ftyp"),
)
ALLOWED = ", ".join(ext for _type, exts, _test in KINDS for ext in exts)


def check_upload(upload: Any) -> str:
    """The upload's content type, or ApplicationError naming the field `file`."""
    if upload is None:
        raise ApplicationError(_("Choose a file."), fields={"file": [_("Required.")]})
    if upload.size > MAX_BYTES:
        raise ApplicationError(_("The file is too large (at most 10 MB)."), fields={"file": [_("At most 10 MB.")]})
    if upload.size == 0:
        raise ApplicationError(_("The file is empty."), fields={"file": [_("Empty file.")]})
    name = upload.name.lower()
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    for content_type, extensions, test in KINDS:
        if name.endswith(extensions) and test(head):
            return content_type
    raise ApplicationError(
        _("Only photos, PDFs and recordings can be attached (%(allowed)s).") % {"allowed": ALLOWED},
        fields={"file": [_("This file type is not allowed, or its content does not match its name.")]},
    )
