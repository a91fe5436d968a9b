"""Database ids as they arrive in text (URL paths, query strings, tokens, audit targets)."""

from __future__ import annotations

import re

# Ids are 32-bit on PostgreSQL; anything larger cannot exist.
MAX_ID = 2**31 - 1
# ASCII digits only: ``str.isdigit`` and ``int`` also take other scripts' digits (U+0661 is 1) and
# superscripts (U+00B2 passes isdigit, then int() raises).
_ASCII_ID = re.compile(r"[0-9]{1,10}")


def parse_id(text: str) -> int | None:
    """The id written in ``text``, or None when it is not 1-10 ASCII digits up to ``MAX_ID``."""
    if _ASCII_ID.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value <= MAX_ID else None
