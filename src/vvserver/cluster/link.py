"""One node's link to Redis: commands, one pub/sub reader, and an ordered outbox.

* Commands go through redis-py's asyncio client (a connection pool).
* Every channel the node listens to is read by one pub/sub connection; each message goes to the
  handler registered for its channel (handlers are quick and never block: work that waits is
  started as a task by the handler itself).
* ``send`` queues a publication (or a small pipeline of writes) without waiting: the sender
  task sends them in order, so a node's messages arrive in the order it made them, and code
  that must not wait (the event bus, presence, cache invalidation) never waits for Redis.

Every key and channel starts with ``settings.redis_key_prefix`` (``key(...)``): one cluster
per prefix, and tests use a prefix of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from vvserver.aio import TaskSet, cancel_requested

logger = logging.getLogger(__name__)

Handler = Callable[[str], None]
Outgoing = Callable[["Redis"], Awaitable[Any]]
OUTBOX_LIMIT = 10_000
RETRY_S = 0.5


class RedisLink:
    def __init__(self, url: str, prefix: str, node_id: str) -> None:
        self.redis: Redis = Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=3, health_check_interval=10
        )
        self.prefix = prefix
        self.node_id = node_id
        self._handlers: dict[str, Handler] = {}
        self._pubsub: PubSub | None = None
        self._outbox: asyncio.Queue[Outgoing] = asyncio.Queue(maxsize=OUTBOX_LIMIT)
        self._tasks = TaskSet()
        self._started = False
        self._closed = False
        self.subscribed = asyncio.Event()

    def key(self, *parts: object) -> str:
        return ":".join((self.prefix, *(str(part) for part in parts)))

    def on(self, channel: str, handler: Handler) -> None:
        """Deliver the messages of ``channel`` to ``handler`` (register before ``start``)."""
        self._handlers[channel] = handler

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        await self.redis.ping()
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(*self._handlers)
        self.subscribed.set()
        self._tasks.create(self._read(self._pubsub), name="redis pub/sub reader")
        self._tasks.create(self._send_outbox(), name="redis outbox")

    async def _read(self, pubsub: PubSub) -> None:
        while not cancel_requested():
            try:
                message = await pubsub.get_message(timeout=1.0)
            except (RedisError, OSError) as exc:
                logger.warning("redis pub/sub: %r; reconnecting", exc)
                await asyncio.sleep(RETRY_S)
                continue
            if message is None or message.get("type") != "message":
                continue
            handler = self._handlers.get(str(message["channel"]))
            if handler is None:
                continue
            try:
                handler(str(message["data"]))
            except Exception:
                logger.exception("redis message on %s could not be handled", message["channel"])
        raise asyncio.CancelledError  # asked to stop; a library swallowed the cancellation

    def send(self, action: Outgoing) -> None:
        """Queue ``action(redis)`` for the sender task; never waits, never raises."""
        if self._closed:
            return
        try:
            self._outbox.put_nowait(action)
        except asyncio.QueueFull:
            logger.error("redis outbox full: a cluster message was dropped")

    def publish_later(self, channel: str, data: str) -> None:
        self.send(lambda redis: redis.publish(channel, data))

    async def _send_outbox(self) -> None:
        while not cancel_requested():
            action = await self._outbox.get()
            try:
                while True:
                    try:
                        await action(self.redis)
                        break
                    except (RedisError, OSError) as exc:
                        logger.warning("redis write failed (%r); retrying", exc)
                        await asyncio.sleep(RETRY_S)
            finally:
                self._outbox.task_done()
        raise asyncio.CancelledError  # asked to stop; a library swallowed the cancellation

    async def flush(self, within: float = 5.0) -> None:
        """Wait (up to ``within`` seconds) until everything queued has been sent."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._outbox.join()

    async def close(self) -> None:
        if self._closed:
            return
        if self._started:
            await self.flush(2.0)
        self._closed = True
        await self._tasks.close()
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
        await self.redis.aclose()
