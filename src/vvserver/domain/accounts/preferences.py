"""An account's own preferences: the language its e-mails are written in (staff and visitors)."""

from __future__ import annotations

import logging

from vvserver.db.models import Account
from vvserver.domain.accounts.scope import Caller
from vvserver.domain.errors import InvalidInput, NotFound
from vvserver.domain.notices.language import is_language
from vvserver.domain.services import Services

logger = logging.getLogger(__name__)


async def set_language(services: Services, caller: Caller, language: str) -> Account:
    """Write this account's future e-mails in ``language``; audited when it changes."""
    if not is_language(language):
        raise InvalidInput("language must be en or es", code="bad_language")
    account_id = caller.principal.require_account_id()
    now = services.clock.now()
    async with services.write() as session:
        account = await session.get(Account, account_id, with_for_update=True)
        if account is None:
            raise NotFound("no such account")
        old = account.language
        if old != language:
            account.language = language
            await caller.audit(
                services,
                session,
                "account.set_language",
                f"account:{account.id}",
                now,
                old=old,
                new=language,
            )
            logger.info("account %s language %s -> %s", account.id, old, language)
    return account
