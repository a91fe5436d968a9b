"""The rooms of this node, as the cluster sees them.

* Every event of a room open here is published on ``<prefix>:roomev`` (JSON by type, with the
  node id), in order; other nodes hand it to their ``RemoteRoom`` of the visit and to their live
  boards (``event_listeners``). A room that ends here gives its placement back.
* Every beat the placements of the rooms open here are renewed, and the rooms with their
  recording rows are listed in ``<prefix>:hosted:<node>`` (same time to live as the node): a
  node starting up leaves those calls and recordings alone (``startup.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, get_args

from redis.asyncio import Redis
from redis.exceptions import RedisError

from vvserver.aio import TaskSet, cancel_requested
from vvserver.cluster.codec import UnknownEvent, dumps, room_event_from, room_event_json
from vvserver.cluster.link import RedisLink
from vvserver.cluster.media_bridge import ClusterMedia
from vvserver.cluster.nodes import BEAT_S, NODE_TTL_S
from vvserver.cluster.placement import Placement
from vvserver.media.room_events import EventSubscription, Role, RoomEvent, VisitEnded
from vvserver.visits_live import VisitMedia

if TYPE_CHECKING:
    from vvserver.media.room import VisitRoom

logger = logging.getLogger(__name__)

ROLES: tuple[Role, ...] = get_args(Role)


class RoomHost:
    def __init__(
        self, link: RedisLink, placement: Placement, media: ClusterMedia, local: VisitMedia
    ) -> None:
        self.link = link
        self.placement = placement
        self.media = media
        self.local = local
        self.channel = link.key("roomev")
        # Every room event of the cluster (the live boards' figures).
        self.event_listeners: list[Callable[[RoomEvent], None]] = []
        self._tasks = TaskSet()
        self._let_go: set[int] = set()  # rooms here whose call was placed elsewhere
        self.events_published = 0
        link.on(self.channel, self._on_event)
        local.rooms.on_open.append(self._opened)

    def hosted_key(self, node: str) -> str:
        return self.link.key("hosted", node)

    def _opened(self, room: VisitRoom) -> None:
        if self._tasks.closed:
            return
        self._tasks.create(
            self._publish(room.visit_id, room.events()), name=f"visit {room.visit_id} to redis"
        )

    async def _publish(self, visit_id: int, events: EventSubscription) -> None:
        async for event in events:
            self.events_published += 1
            self.link.publish_later(
                self.channel, dumps({"node": self.link.node_id, **room_event_json(event)})
            )
            self._tell_listeners(event)
            if isinstance(event, VisitEnded):

                async def release(_redis: Redis, visit_id: int = visit_id) -> None:
                    await self.placement.release(visit_id)

                self.link.send(release)

    def _tell_listeners(self, event: RoomEvent) -> None:
        for listener in self.event_listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("room event listener failed")

    def _on_event(self, raw: str) -> None:
        data = json.loads(raw)
        node = str(data.pop("node", ""))
        if node == self.link.node_id:
            return
        try:
            event = room_event_from(data)
        except (UnknownEvent, TypeError, ValueError) as exc:
            logger.warning("room event from %s ignored: %s", node, exc)
            return
        remote = self.media.remote_room(event.visit_id)
        if remote is not None and remote.node == node:
            remote.deliver(event)
        self._tell_listeners(event)

    async def beat(self) -> None:
        visit_ids = self.local.rooms.visit_ids()
        lost = await self.placement.renew(visit_ids)
        self._let_go &= set(visit_ids)
        for visit_id in lost:
            if visit_id in self._let_go:
                continue
            self._let_go.add(visit_id)
            # This node stalled past its registry lifetime and the call was placed again
            # elsewhere (its clients re-offered there). This copy lets its participants go
            # as if they had hung up (no lost time counted twice) but stays open, empty, to
            # the slot's end: closing it now would tell the clients the visit ended and set
            # the visit back to ready while it goes on elsewhere.
            logger.error("visit %s: placed on another node meanwhile; letting it go", visit_id)
            for role in ROLES:
                await self.local.leave(visit_id, role)
        key = self.hosted_key(self.link.node_id)
        recordings = self.local.open_recordings()
        async with self.link.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if recordings:
                pipe.hset(key, mapping={str(v): str(r or 0) for v, r in recordings.items()})
                pipe.pexpire(key, int(NODE_TTL_S * 1000))
            await pipe.execute()

    async def run(self) -> None:
        while not cancel_requested():
            try:
                await self.beat()
            except (RedisError, OSError) as exc:
                logger.warning("cluster room beat: %r", exc)
            await asyncio.sleep(BEAT_S)
        raise asyncio.CancelledError  # asked to stop; a library swallowed the cancellation

    async def close(self) -> None:
        await self._tasks.close()
        with contextlib.suppress(RedisError, OSError):
            await self.link.redis.delete(self.hosted_key(self.link.node_id))
