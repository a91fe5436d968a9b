"""TOTP (RFC 6238) secrets, codes and recovery codes: the pure parts of staff MFA.

A TOTP secret is 160 random bits (base32, what authenticator apps expect). It is stored
encrypted with AES-256-GCM under a key derived from the server secret (HMAC-SHA256 with a fixed
label), bound to its account by the associated data, so a database dump alone does not reveal
it and a ciphertext copied to another account does not decrypt.

Recovery codes are 10 characters from a 32-letter alphabet without look-alikes (50 bits),
shown once and stored argon2id-hashed like passwords.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

import pyotp

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PERIOD_S = 30
DIGITS = 6
RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
RECOVERY_LENGTH = 10
_KEY_LABEL = b"vvserver staff mfa totp-secret key v1"
_FORMAT = "v1"


class SecretUnreadable(Exception):
    """The stored secret does not decrypt (the server secret changed, or the row was edited)."""


def new_secret() -> str:
    return pyotp.random_base32(length=32)


def _key(server_secret: bytes) -> bytes:
    return hmac.new(server_secret, _KEY_LABEL, hashlib.sha256).digest()


def _cipher(server_secret: bytes) -> AESGCM:
    # cryptography (its OpenSSL binding, ~6.5 MB resident) loads at the first MFA secret
    # sealed or opened, not at start.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(_key(server_secret))


def _bound_to(account_id: int) -> bytes:
    return f"account:{account_id}".encode()


def seal_secret(server_secret: bytes, account_id: int, secret: str) -> str:
    nonce = secrets.token_bytes(12)
    sealed = _cipher(server_secret).encrypt(nonce, secret.encode(), _bound_to(account_id))
    return f"{_FORMAT}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def open_secret(server_secret: bytes, account_id: int, stored: str) -> str:
    version, _, payload = stored.partition(".")
    if version != _FORMAT:
        raise SecretUnreadable(f"unknown format {version!r}")
    from cryptography.exceptions import InvalidTag

    try:
        raw = base64.urlsafe_b64decode(payload)
        plain = _cipher(server_secret).decrypt(raw[:12], raw[12:], _bound_to(account_id))
    except (InvalidTag, ValueError) as exc:
        raise SecretUnreadable("the secret does not decrypt with this server secret") from exc
    return plain.decode()


def time_step(moment: datetime) -> int:
    return int(moment.timestamp()) // PERIOD_S


def code_at_step(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD_S).generate_otp(step)


def looks_like_totp(code: str) -> bool:
    return len(code) == DIGITS and code.isascii() and code.isdigit()


def matching_step(secret: str, code: str, moment: datetime, window: int) -> int | None:
    """The time step (within ``window`` steps of ``moment``) whose code is ``code``, or None.

    Every candidate is compared (constant time), so timing does not tell which one matched.
    """
    if not looks_like_totp(code):
        return None
    current = time_step(moment)
    found: int | None = None
    for step in range(current - window, current + window + 1):
        if hmac.compare_digest(code_at_step(secret, step), code):
            found = step
    return found


def provisioning_uri(secret: str, *, account_name: str, issuer: str) -> str:
    """The ``otpauth://totp/...`` URI authenticator apps read from the QR code."""
    label = quote(f"{issuer}:{account_name}", safe="@:")
    query = urlencode(
        {
            "secret": secret,
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": PERIOD_S,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def normalise_recovery_code(code: str) -> str | None:
    """Upper-case without spaces and hyphens; None when it cannot be a recovery code."""
    compact = "".join(code.split()).replace("-", "").upper()
    if len(compact) != RECOVERY_LENGTH or any(ch not in RECOVERY_ALPHABET for ch in compact):
        return None
    return f"{compact[:5]}-{compact[5:]}"
