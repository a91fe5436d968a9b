"""The languages an account can get its e-mails in, and how an unknown value falls back."""

from __future__ import annotations

from typing import Final, Literal, TypeGuard

Language = Literal["en", "es"]
LANGUAGES: Final[tuple[Language, ...]] = ("en", "es")
DEFAULT_LANGUAGE: Final[Language] = "en"


def is_language(value: object) -> TypeGuard[Language]:
    return value in LANGUAGES


def language_of(value: str | None) -> Language:
    """A stored or requested language code; anything unknown reads as English."""
    return value if is_language(value) else DEFAULT_LANGUAGE
