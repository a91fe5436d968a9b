"""Scale-out: many nodes (worker processes, on one or many machines) as one server.

Redis (through redis-py's asyncio client) is the cluster's shared state and message bus,
PostgreSQL its data; there is no cluster protocol of our own. ``Cluster`` is built by the app
factory when ``settings.redis_url`` is set: it swaps the per-process parts of ``Services``
for cluster-wide ones (``shared_state``), registers the node with its load (``nodes``),
places each visit's room on one node (``placement``), bridges signaling to the room's node
(``media_bridge``, ``rpc``, ``room_host``) and reacts to lost nodes. See docs/scaling.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from redis.exceptions import RedisError
from sqlalchemy import select

from vvserver.aio import TaskSet
from vvserver.cluster.link import RedisLink
from vvserver.cluster.media_bridge import ClusterMedia
from vvserver.cluster.nodes import NodeLoad, NodeRegistry
from vvserver.cluster.placement import Placement
from vvserver.cluster.room_host import RoomHost
from vvserver.cluster.rpc import Rpc
from vvserver.cluster.shared_state import (
    ClusterCounts,
    ClusterEventBus,
    ClusterSessionCache,
    ClusterWakeups,
    RedisPinTries,
    RedisRateLimiter,
)
from vvserver.db.models import Recording
from vvserver.domain.facilities.presence import (
    KioskPresence,
    ParticipantPresence,
    VisitorAvailability,
)
from vvserver.domain.services import Services
from vvserver.media.room_events import RoomEvent
from vvserver.settings import Settings
from vvserver.visits_live import VisitMedia

logger = logging.getLogger(__name__)

# A recording row this young may belong to a room another node is opening right now.
YOUNG_RECORDING = timedelta(seconds=10)

__all__ = ["Cluster", "HostedElsewhere"]


@dataclass(frozen=True, slots=True)
class HostedElsewhere:
    """Calls and recordings that live nodes hold now: start-up repair leaves them alone."""

    visit_ids: frozenset[int]
    recording_ids: frozenset[int]
    directories: frozenset[str]


class Cluster:
    def __init__(self, settings: Settings, services: Services, node_id: str) -> None:
        assert settings.redis_url is not None
        self.settings = settings
        self.services = services
        self.node_id = node_id
        link = self.link = RedisLink(settings.redis_url, settings.redis_key_prefix, node_id)
        self.counts = ClusterCounts(link)
        services.events = ClusterEventBus(link)
        services.kiosks_online = KioskPresence(self.counts)
        services.participants = ParticipantPresence(self.counts)
        services.available_visitors = VisitorAvailability(self.counts)
        services.sessions = ClusterSessionCache(link, ttl_s=services.sessions.ttl_s)
        services.wakeups = ClusterWakeups(link)
        services.rate_limiter = RedisRateLimiter(link)
        services.pin_tries = RedisPinTries(link)
        self.rpc = Rpc(link)
        self._local: VisitMedia | None = None
        self.registry = NodeRegistry(link, self._load, address=settings.public_address)
        self.registry.keep_alive.append(self.counts.hash_key(node_id))  # presence lives on
        self.placement = Placement(link, self.registry)
        self.media: ClusterMedia | None = None
        self.host: RoomHost | None = None
        self._tasks = TaskSet()
        self._started = False

    def attach(self, local: VisitMedia) -> ClusterMedia:
        """Serve this node's rooms to the cluster; returns the media signaling talks to."""
        self._local = local
        self.media = ClusterMedia(local, self.placement, self.rpc)
        self.media.serve()
        self.host = RoomHost(self.link, self.placement, self.media, local)
        return self.media

    def on_room_event(self, listener: Callable[[RoomEvent], None]) -> None:
        assert self.host is not None
        self.host.event_listeners.append(listener)

    def _load(self) -> NodeLoad:
        local = self._local
        if local is None:
            return NodeLoad(0, 0, False)
        metrics = local.metrics()
        return NodeLoad(
            metrics.rooms_open,
            metrics.participants_connected,
            bool(getattr(local, "draining", False)),
        )

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        await self.counts.reset_own()
        await self.link.start()
        self.registry.lost_listeners.append(self._node_lost)
        self.registry.found_listeners.append(self._node_found)
        await self.registry.beat()
        await self.registry.scan()
        self._tasks.create(self.registry.run(), name="cluster registry")
        if self.host is not None:
            self._tasks.create(self.host.run(), name="cluster room beat")
        logger.info(
            "cluster: node %s up; %d other nodes: %s",
            self.node_id,
            len(self.registry.alive),
            ", ".join(sorted(self.registry.alive)) or "-",
        )

    def _node_found(self, node: str) -> None:
        self._tasks.create(self._load_counts(node), name=f"presence of {node}")

    async def _load_counts(self, node: str) -> None:
        try:
            await self.counts.load(node)
        except (RedisError, OSError) as exc:
            logger.warning("presence of node %s not read: %r", node, exc)

    def _node_lost(self, node: str) -> None:
        self.rpc.node_lost(node)
        self.counts.node_lost(node)
        if self.media is not None:
            self._tasks.create(self.media.node_lost(node), name=f"rooms of {node}")

    async def hosted_elsewhere(self) -> HostedElsewhere:
        """What the live nodes (not this one) hold now, plus recordings just created.

        A recording created in the last ``YOUNG_RECORDING`` may belong to a room a live node is
        opening (its row exists before the node lists it), unless a live node already lists
        another recording for that visit: then it is a dead node's, left for this start-up to
        finish.
        """
        redis = self.link.redis
        hosted: dict[int, int] = {}
        for node in self.registry.alive:
            for visit_id, recording_id in (
                await redis.hgetall(self.link.key("hosted", node))
            ).items():
                hosted[int(visit_id)] = int(recording_id)
        recording_ids = {r for r in hosted.values() if r}
        since = self.services.clock.now() - YOUNG_RECORDING
        async with self.services.read() as session:
            young = await session.execute(
                select(Recording.id, Recording.directory, Recording.visit_id).where(
                    (Recording.created_at > since) | Recording.id.in_(recording_ids or {0})
                )
            )
            rows = [
                row
                for row in young.all()
                if row[0] in recording_ids or hosted.get(row[2], 0) in (0, row[0])
            ]
        return HostedElsewhere(
            frozenset(hosted),
            frozenset(recording_ids | {row[0] for row in rows}),
            frozenset(str(row[1]) for row in rows),
        )

    async def close(self) -> None:
        if not self._started:
            await self.link.close()
            return
        self._started = False
        await self._tasks.close()
        if self.host is not None:
            await self.host.close()
        await self.rpc.close()
        try:
            await self.registry.leave()
            if self.placement is not None and self._local is not None:
                for visit_id in self._local.rooms.visit_ids():
                    await self.placement.release(visit_id)
        except (RedisError, OSError) as exc:
            logger.warning("cluster: could not leave cleanly: %r", exc)
        await self.link.close()
        await asyncio.sleep(0)
