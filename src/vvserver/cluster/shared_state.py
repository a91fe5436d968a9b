"""Cluster-wide variants of the per-process parts of ``Services``.

* ``ClusterEventBus``: a visit event published here goes to this process's subscribers and
  (as JSON by kind) to every other node, which delivers it to its own: each once.
* ``ClusterCounts``: open sockets (kiosks online, participants in a call, visitors available
  now for Visit now) per node; each node
  mirrors the others' counts (a hash per node plus a change message), and drops a lost node's.
* ``ClusterSessionCache``: sign-out, password reset and deactivation drop the cached session on
  every node at once.
* ``ClusterWakeups``: a commit that changes the scheduler's or mailer's input wakes them on
  every node.
* ``RedisRateLimiter`` and ``RedisPinTries``: counts and locks kept in Redis, so tries spread
  over nodes add up.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from vvserver.cluster.codec import UnknownEvent, dumps, visit_event_from, visit_event_json
from vvserver.cluster.link import RedisLink
from vvserver.cluster.nodes import NODE_TTL_S
from vvserver.db.wakeups import WAKE_KEY, WorkerWakeups
from vvserver.domain.accounts.ratelimit import RateLimiter, too_many
from vvserver.domain.accounts.session_cache import SessionCache
from vvserver.domain.facilities.presence import SocketCounts
from vvserver.domain.visits.bus import VisitEvent, VisitEventBus
from vvserver.domain.visits.pin_tries import PinState

logger = logging.getLogger(__name__)


class ClusterEventBus(VisitEventBus):
    def __init__(self, link: RedisLink) -> None:
        super().__init__()
        self.link = link
        self.channel = link.key("events")
        link.on(self.channel, self._on_message)

    def publish(self, event: VisitEvent) -> None:
        super().publish(event)
        message = dumps({"origin": self.link.node_id, "event": visit_event_json(event)})
        self.link.publish_later(self.channel, message)

    def _on_message(self, raw: str) -> None:
        data = json.loads(raw)
        if data.get("origin") == self.link.node_id:
            return
        try:
            event = visit_event_from(data["event"])
        except (UnknownEvent, KeyError, TypeError, ValueError) as exc:
            logger.warning("visit event from %s ignored: %s", data.get("origin"), exc)
            return
        self.deliver_remote(event)


class ClusterCounts(SocketCounts):
    def __init__(self, link: RedisLink) -> None:
        super().__init__()
        self.link = link
        self.channel = link.key("presence")
        self._remote: dict[str, dict[str, int]] = {}
        self._seq = 0
        # This process's life: a node id that restarts starts its counts (and sequence) anew.
        self.incarnation = uuid.uuid4().hex[:12]
        self._seen: dict[str, tuple[str, int]] = {}
        # Called when another node's counts change (live boards refresh).
        self.listeners: list[Callable[[], None]] = []
        link.on(self.channel, self._on_message)

    def hash_key(self, node: str) -> str:
        return self.link.key("presence", node)

    def add(self, key: str, delta: int) -> None:
        super().add(key, delta)
        self._seq += 1
        count, seq, hash_key = super().total(key), self._seq, self.hash_key(self.link.node_id)
        message = dumps(
            {
                "node": self.link.node_id,
                "inc": self.incarnation,
                "seq": seq,
                "key": key,
                "count": count,
            }
        )

        async def write(redis: Redis) -> None:
            async with redis.pipeline(transaction=True) as pipe:
                if count > 0:
                    pipe.hset(hash_key, key, count)
                else:
                    pipe.hdel(hash_key, key)
                pipe.hset(hash_key, mapping={"_seq": seq, "_inc": self.incarnation})
                pipe.pexpire(hash_key, int(NODE_TTL_S * 1000))
                pipe.publish(self.channel, message)
                await pipe.execute()

        self.link.send(write)

    def total(self, key: str) -> int:
        return super().total(key) + sum(counts.get(key, 0) for counts in self._remote.values())

    def keys(self, prefix: str) -> set[str]:
        found = super().keys(prefix)
        for counts in self._remote.values():
            found.update(key for key, count in counts.items() if key.startswith(prefix) and count)
        return found

    def _newer(self, node: str, incarnation: str, seq: int) -> bool:
        """Whether (incarnation, seq) is news about ``node``; a new incarnation starts afresh."""
        known = self._seen.get(node)
        if known is not None and known[0] == incarnation and seq <= known[1]:
            return False
        if known is None or known[0] != incarnation:
            self._remote[node] = {}
        self._seen[node] = (incarnation, seq)
        return True

    def _on_message(self, raw: str) -> None:
        data = json.loads(raw)
        node = str(data["node"])
        if node == self.link.node_id or not self._newer(node, str(data["inc"]), int(data["seq"])):
            return
        counts = self._remote.setdefault(node, {})
        if int(data["count"]) > 0:
            counts[str(data["key"])] = int(data["count"])
        else:
            counts.pop(str(data["key"]), None)
        self._changed()

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    async def load(self, node: str) -> None:
        """Read a node's counts (a node found up, or at start)."""
        fields = await self.link.redis.hgetall(self.hash_key(node))
        seq = int(fields.pop("_seq", 0))
        incarnation = str(fields.pop("_inc", ""))
        if not self._newer(node, incarnation, seq):
            return
        self._remote[node] = {str(key): int(value) for key, value in fields.items()}
        self._changed()

    async def reset_own(self) -> None:
        """At start: a hash left by this node id's previous life is stale."""
        await self.link.redis.delete(self.hash_key(self.link.node_id))

    def node_lost(self, node: str) -> None:
        if self._remote.pop(node, None):
            self._changed()
        self._seen.pop(node, None)


class ClusterSessionCache(SessionCache):
    def __init__(self, link: RedisLink, ttl_s: float = 5.0) -> None:
        super().__init__(ttl_s=ttl_s)
        self.link = link
        self.channel = link.key("sessions")
        link.on(self.channel, self._on_message)

    def forget(self, key: str) -> None:
        super().forget(key)
        self.link.publish_later(self.channel, dumps({"origin": self.link.node_id, "key": key}))

    def forget_account(self, account_id: int) -> None:
        super().forget_account(account_id)
        message = dumps({"origin": self.link.node_id, "account_id": account_id})
        self.link.publish_later(self.channel, message)

    def _on_message(self, raw: str) -> None:
        data = json.loads(raw)
        if data.get("origin") == self.link.node_id:
            return
        if "key" in data:
            super().forget(str(data["key"]))
        if "account_id" in data:
            super().forget_account(int(data["account_id"]))


class ClusterWakeups(WorkerWakeups):
    def __init__(self, link: RedisLink) -> None:
        super().__init__()
        self.link = link
        self.channel = link.key("wakeups")
        link.on(self.channel, self._on_message)

    def after_commit(self, session: Any) -> None:
        marks = set(session.info.get(WAKE_KEY) or ())
        super().after_commit(session)
        if marks:
            message = dumps({"origin": self.link.node_id, "workers": sorted(marks)})
            self.link.publish_later(self.channel, message)

    def _on_message(self, raw: str) -> None:
        data = json.loads(raw)
        if data.get("origin") == self.link.node_id:
            return
        workers = set(data.get("workers", ()))
        if "scheduler" in workers:
            self.scheduler.wake()
        if "mailer" in workers:
            self.mailer.wake()


# KEYS[1]: the counter; ARGV[1]: window ms. Returns {count, ms left in the window}.
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); left = tonumber(ARGV[1]) end
return {count, left}
"""


class RedisRateLimiter(RateLimiter):
    """Fixed windows per (kind, client), counted in Redis by every node."""

    def __init__(self, link: RedisLink, window_s: float = 60.0) -> None:
        super().__init__(window_s=window_s)
        self.link = link
        self._hit = link.redis.register_script(_HIT)

    async def hit(self, kind: str, client: str, limit: int) -> None:
        key = self.link.key("rate", kind, client)
        count, left_ms = await self._hit(keys=[key], args=[int(self.window_s * 1000)])
        if int(count) > limit:
            raise too_many(kind, int(left_ms) / 1000)


class RedisPinTries:
    """Kiosk PIN state per visit in a Redis hash; checks serialised by a Redis lock."""

    LOCK_TIMEOUT_S = 30.0

    def __init__(self, link: RedisLink) -> None:
        self.link = link

    def _key(self, visit_id: int) -> str:
        return self.link.key("pin", visit_id)

    @asynccontextmanager
    async def _guard(self, visit_id: int) -> AsyncIterator[None]:
        lock = self.link.redis.lock(
            self.link.key("pin-lock", visit_id),
            timeout=self.LOCK_TIMEOUT_S,
            blocking_timeout=self.LOCK_TIMEOUT_S,
        )
        async with lock:
            yield

    def guard(self, visit_id: int) -> AbstractAsyncContextManager[None]:
        return self._guard(visit_id)

    async def get(self, visit_id: int) -> PinState:
        fields = await self.link.redis.hgetall(self._key(visit_id))
        if not fields:
            return PinState()
        locked = str(fields.get("locked_until") or "")
        return PinState(
            confirmed=fields.get("confirmed") == "1",
            wrong=int(fields.get("wrong", 0)),
            locked_until=datetime.fromisoformat(locked) if locked else None,
        )

    async def put(
        self, visit_id: int, state: PinState, *, now: datetime, keep_until: datetime
    ) -> None:
        key = self._key(visit_id)
        keep_s = max(1, int((keep_until - now).total_seconds()))
        async with self.link.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "confirmed": int(state.confirmed),
                    "wrong": state.wrong,
                    "locked_until": state.locked_until.isoformat() if state.locked_until else "",
                },
            )
            pipe.expire(key, keep_s)
            await pipe.execute()
