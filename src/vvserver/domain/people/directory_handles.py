"""Opaque, short-lived handles for people a visitor found in the directory.

The directory answers a matching booking number and last name (``directory_match``: both must
fit one person) with a handle, not the person's database id. An approval request names the
person only by such a handle, so a visitor can ask to visit only someone they found through the
directory (both matched, rate limited), never an id they guessed. A handle is AES-GCM encrypted
and authenticated with a key derived from the server's secret: it binds the person, the visitor
who searched and an expiry (``HANDLE_TTL``), and shows none of them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from vvserver.domain.errors import InvalidInput

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HANDLE_TTL = timedelta(minutes=30)
_CONTEXT = b"vvserver directory handle v1"
_LAYOUT = struct.Struct(">IIQ")  # person id, visitor id, expiry (Unix seconds)
_NONCE_BYTES = 12


def _cipher(secret: bytes) -> AESGCM:
    # cryptography (its OpenSSL binding, ~6.5 MB resident) loads at the first directory
    # search, not at start.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(hmac.new(secret, _CONTEXT, hashlib.sha256).digest())


def issue_handle(secret: bytes, *, person_id: int, visitor_id: int, now: datetime) -> str:
    """A handle for ``person_id``, usable by ``visitor_id`` until ``now + HANDLE_TTL``."""
    expires = int((now + HANDLE_TTL).timestamp())
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _cipher(secret).encrypt(nonce, _LAYOUT.pack(person_id, visitor_id, expires), _CONTEXT)
    return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()


def open_handle(secret: bytes, handle: str, *, visitor_id: int, now: datetime) -> int:
    """The person id of a handle this visitor got from the directory and that has not expired.

    ``directory_handle_invalid`` (forged, damaged or another visitor's) or
    ``directory_handle_expired`` (search again), both 422.
    """
    invalid = InvalidInput(
        "this person was not found through the directory; search again",
        code="directory_handle_invalid",
    )
    from cryptography.exceptions import InvalidTag

    try:
        raw = base64.urlsafe_b64decode(handle + "=" * (-len(handle) % 4))
        plain = _cipher(secret).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _CONTEXT)
        person_id, owner, expires = _LAYOUT.unpack(plain)
    except (InvalidTag, ValueError, struct.error):
        raise invalid from None
    if owner != visitor_id:
        raise invalid
    if now >= datetime.fromtimestamp(expires, UTC):
        raise InvalidInput(
            "this search result is too old; search for the person again",
            code="directory_handle_expired",
        )
    return int(person_id)
