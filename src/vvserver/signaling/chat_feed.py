"""Delivering chat messages to the sockets that follow a visit.

A stored message nudges the hub (``chat_posted``); every following socket then reads the messages
after the last one it sent, from the store, in id order. So what a socket shows is exactly
what was stored, none is lost when nudges come in a burst, and a socket follows only what its
query selects (its own visit, its kiosk's visits, or the non-privileged visits in an
officer's scope).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy import Select

from vvserver.aio import stop_task
from vvserver.db.models import VisitMessage
from vvserver.domain.services import Services
from vvserver.domain.visits.chat import ChatLine, latest_message_id, messages_after
from vvserver.signaling.connection import Connection
from vvserver.signaling.hub import SignalingHub
from vvserver.signaling.protocol import ChatOutMessage

logger = logging.getLogger(__name__)

STOP_WAIT_S = 5.0


def chat_out(line: ChatLine) -> ChatOutMessage:
    return ChatOutMessage(
        id=line.id,
        visit_id=line.visit_id,
        sender=line.sender,
        text=line.text,
        at=datetime.fromisoformat(line.at_iso),
    )


class ChatFeed:
    """Sends one socket the new messages its query selects; ``close`` stops it (idempotent)."""

    def __init__(
        self,
        hub: SignalingHub,
        services: Services,
        conn: Connection,
        followed: Select[VisitMessage],
    ) -> None:
        self._hub = hub
        self._services = services
        self._conn = conn
        self._followed = followed
        self._changed = hub.watch_chat()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        """Follow from now on (earlier messages come from ``GET /api/visits/{id}/messages``)."""
        after = await latest_message_id(self._services)
        self._task = asyncio.create_task(self._run(after), name="chat feed")

    async def _run(self, after: int) -> None:
        try:
            while not self._conn.closed:
                await self._changed.wait()
                self._changed.clear()
                if self._closing:
                    return
                while True:
                    lines = await messages_after(self._services, self._followed, after)
                    for line in lines:
                        await self._conn.send(chat_out(line))
                        after = line.id
                    if len(lines) < 200:
                        break
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("chat feed of socket %s failed", self._conn.request_id)
            await self._conn.error("internal_error", "chat delivery stopped; reconnect")

    def stop(self) -> None:
        """Ask the feed to stop (it ends at its next wake-up, which this causes); idempotent."""
        self._closing = True
        self._hub.unwatch_chat(self._changed)
        self._changed.set()

    async def close(self) -> None:
        """Stop between reads: a task cancelled inside a database call could leave its
        pooled connection mid-transaction, so the feed is asked to stop and awaited."""
        self.stop()
        task, self._task = self._task, None
        if task is None:
            return
        await stop_task(task, STOP_WAIT_S)
