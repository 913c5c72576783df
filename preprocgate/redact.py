"""Keeping secrets (a forge token, values read from variables named like secrets) out of every message and report.

Replacing the exact string is not enough: an error may quote the secret ``repr``-escaped (a newline shown as
``\\n``), JSON-escaped, percent-encoded in a URL, base64-encoded in a Basic header, or split at its line breaks.
Each of those forms is replaced too.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_PART = 4  # pieces of a multi-line secret shorter than this are too common to mask without garbling text


def forms(secret: str) -> set[str]:
    """Every spelling of ``secret`` that an error message or URL might contain."""
    if not secret:
        return set()
    found = {
        secret,
        secret.strip(),
        repr(secret)[1:-1],
        secret.encode("unicode_escape").decode("ascii"),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        base64.b64encode(secret.encode("utf-8")).decode("ascii"),
        secret.replace("/", "\\/"),  # JSON encoders that escape the solidus
    }
    found |= {line.strip() for line in secret.splitlines()}
    return {f for f in found if len(f) >= MIN_PART or f == secret}


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every form of every secret replaced by ``***``, longest first (a form may contain another)."""
    spellings = sorted({f for s in secrets for f in forms(s)}, key=len, reverse=True)
    for spelling in spellings:
        if spelling:
            text = text.replace(spelling, MASK)
    return text


def url_secrets(url: str) -> list[str]:
    """The parts of a URL that may carry credentials: its user info (``user:password@``) and its query (a signed
    URL's signature, a SAS token). Whole parts, not single values: a short value such as ``v=1`` masked on its own
    would garble every ``1`` of a message."""
    _, sep, rest = url.partition("://")
    if not sep:
        return []
    location, _, query = rest.partition("?")
    host = location.split("/", 1)[0]
    userinfo = host.rpartition("@")[0]
    return [part for part in (userinfo, query.split("#", 1)[0]) if part]


def shown_url(url: str) -> str:
    """``url`` as messages and reports may show it: credentials masked, the rest kept to say where it points."""
    return redact(url, url_secrets(url))
