"""Checks of an uploaded file: its size, and what it really is (by its first bytes, not its name).

Each area lists the kinds it takes (complaints: photos, PDFs, recordings; a signed test-drive
agreement: a PDF or a photo) and calls `check_upload(upload, kinds=..., what=...)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils.translation import gettext as _

from crm.core.errors import ApplicationError

MAX_BYTES = 10 * 1024 * 1024

# (content type, extensions, test on the first bytes)
Kind = tuple[str, tuple[str, ...], Callable[[bytes], bool]]

JPEG: Kind = ("image/jpeg", (".jpg", ".jpeg"), lambda head: head.startswith(b"\xff\xd8\xff"))
PNG: Kind = ("image/png", (".png",), lambda head: head.startswith(b"\x89PNG\r\n\x1a\n"))
PDF: Kind = ("application/pdf", (".pdf",), lambda head: head.startswith(b"%PDF-"))
MP3: Kind = ("audio/mpeg", (".mp3",), lambda head: head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3"))
M4A: Kind = ("audio/mp4", (".m4a",), lambda head: head[4:8] == b"ftyp")
MP4: Kind = ("video/mp4", (".mp4",), lambda head: head[4:8] == b"ftyp")


def allowed_extensions(kinds: tuple[Kind, ...]) -> str:
    return ", ".join(ext for _type, exts, _test in kinds for ext in exts)


def check_upload(upload: Any, *, kinds: tuple[Kind, ...], refused: str, field: str = "file") -> str:
    """The upload's content type, or ApplicationError naming `field`; `refused` says what is taken."""
    if upload is None:
        raise ApplicationError(_("Choose a file."), fields={field: [_("Required.")]})
    if upload.size > MAX_BYTES:
        raise ApplicationError(_("The file is too large (at most 10 MB)."), fields={field: [_("At most 10 MB.")]})
    if upload.size == 0:
        raise ApplicationError(_("The file is empty."), fields={field: [_("Empty file.")]})
    name = upload.name.lower()
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    for content_type, extensions, test in kinds:
        if name.endswith(extensions) and test(head):
            return content_type
    raise ApplicationError(
        refused,
        fields={field: [_("This file type is not allowed, or its content does not match its name.")]},
    )
