"""Raw API keys: how they look, how they are hashed. The raw key is shown once, never stored.

Format: ``crmk_<tenant id>_<secret>`` (integration keys) or ``crmt_<tenant id>_<secret>``
(personal tokens). The tenant id in the key only says where to look; the key counts as valid
only if its SHA-256 matches a live credential inside that tenant, under RLS.
"""

from __future__ import annotations

import hashlib
import re
import secrets

PREFIXES = {"integration": "crmk", "personal": "crmt"}
_KEY_RE = re.compile(r"^(crmk|crmt)_(\d{1,18})_([A-Za-z0-9_-]{40,60})$")


def generate_raw_key(*, kind: str, tenant_id: int) -> str:
    return f"{PREFIXES[kind]}_{tenant_id}_{secrets.token_urlsafe(32)}"


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def parse_raw_key(raw_key: str) -> int | None:
    """The tenant id the key names, or None when the string is not a key of ours."""
    match = _KEY_RE.match(raw_key)
    return int(match.group(2)) if match else None


def display_prefix(raw_key: str) -> str:
    kind, tenant, secret = raw_key.split("_", 2)
    return f"{kind}_{tenant}_{secret[:6]}"
