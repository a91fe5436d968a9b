"""What a password must be: 10 to 128 characters, and none of the account's context words.

Context words (ASVS 6.2.11) are the ones an attacker tries first against this server:

* the product name ``vvserver``;
* the e-mail address's local part (whole, and each part of it between ``.``, ``_``, ``-``,
  ``+``) and its domain (whole, and each label but the last, e.g. ``example`` of
  ``example.org``);
* for staff, the names of their facility and agency (whole, and each word of them).

Words and passwords are compared in lower case with everything but letters and digits removed;
a password that contains a word of 4 or more characters is refused with ``weak_password_context``
(422). Shorter words are ignored (they would refuse too many good passphrases).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from vvserver.db.models import Account, Agency, Facility
from vvserver.domain.errors import InvalidInput

MIN_PASSWORD = 10
MAX_PASSWORD = 128
PRODUCT_NAME = "vvserver"
MIN_CONTEXT_WORD = 4
_NOT_ALNUM = re.compile(r"[\W_]+")
_EMAIL_PARTS = re.compile(r"[._+\-]+")


def _squash(text: str) -> str:
    return _NOT_ALNUM.sub("", text.casefold())


def email_words(email: str) -> list[str]:
    """The local part and domain of ``email``, whole and in parts."""
    local, _, domain = email.strip().partition("@")
    labels = [label for label in domain.split(".") if label]
    return [local, *_EMAIL_PARTS.split(local), domain, *labels[:-1]]


def name_words(name: str) -> list[str]:
    """A facility's or agency's name, whole and word by word."""
    return [name, *name.split()]


def context_words(*, email: str | None = None, names: Iterable[str] = ()) -> list[str]:
    """The documented context words for an account (see the module's doc)."""
    words = [PRODUCT_NAME]
    if email:
        words.extend(email_words(email))
    for name in names:
        words.extend(name_words(name))
    seen: list[str] = []
    for word in (_squash(w) for w in words):
        if len(word) >= MIN_CONTEXT_WORD and word not in seen:
            seen.append(word)
    return seen


def check_password_policy(password: str, words: Iterable[str] = (PRODUCT_NAME,)) -> None:
    """Refuse a password of the wrong length (``weak_password``) or with a context word."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            code="weak_password",
        )
    squashed = _squash(password)
    for word in words:
        if len(word) >= MIN_CONTEXT_WORD and word in squashed:
            raise InvalidInput(
                "the password must not contain the product's name, your e-mail address or the "
                "name of your facility or agency",
                code="weak_password_context",
                details={"word": word},
            )


async def account_context_words(session: AsyncSession, account: Account) -> list[str]:
    """Context words of an existing account: its e-mail, and its facility's and agency's names."""
    names: list[str] = []
    if account.facility_id is not None:
        facility = await session.get(Facility, account.facility_id)
        if facility is not None:
            names.append(facility.name)
    if account.agency_id is not None:
        agency = await session.get(Agency, account.agency_id)
        if agency is not None:
            names.append(agency.name)
    return context_words(email=account.email, names=names)
