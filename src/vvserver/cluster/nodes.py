"""The node registry: every node (worker process) says it is alive, with its load.

Each node writes ``<prefix>:node:<node_id>`` (a hash: calls, participants, CPU, draining,
public address) every ``BEAT_S`` with a time to live of ``NODE_TTL_S``, and lists itself in
the sorted set ``<prefix>:nodes``. Every ``SCAN_S`` each node reads the registry: a node is
alive while its hash exists and its request channel has a subscriber. The hash's ``rooms`` is
also raised by each placement on the node (`placement`), before the room opens there: a beat
that follows placements keeps the higher of its own count and the placed one (``_BEAT``), so a
burst of joins spread over two beats still spreads evenly over the nodes. A node killed outright
loses its Redis connections at once (its channel has no subscriber: found within about a
second); a node cut off by power or network stops renewing (found within ``NODE_TTL_S``).
Listeners hear of each node lost, once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import RedisError

from vvserver.aio import cancel_requested
from vvserver.cluster.link import RedisLink

logger = logging.getLogger(__name__)

BEAT_S = 1.0
SCAN_S = 0.5
NODE_TTL_S = 3.0

# KEYS[1]: this node's hash. ARGV: rooms, participants, cpu, draining, address, pid, ttl ms.
# Placements since the last beat (``placed``) are rooms not open here yet: the count keeps
# them until the next beat, when the node's own count has caught up.
_BEAT = """
local rooms = tonumber(ARGV[1])
if (tonumber(redis.call('HGET', KEYS[1], 'placed') or '0') or 0) > 0 then
  local placed_rooms = tonumber(redis.call('HGET', KEYS[1], 'rooms') or '0') or 0
  if placed_rooms > rooms then rooms = placed_rooms end
end
redis.call('HSET', KEYS[1], 'rooms', rooms, 'placed', 0, 'participants', ARGV[2], 'cpu', ARGV[3],
  'draining', ARGV[4], 'address', ARGV[5], 'pid', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return rooms
"""
# A node whose request channel shows no subscriber on this many scans in a row is gone.
SILENT_SCANS = 2
FORGET_AFTER_S = 3600.0


@dataclass(frozen=True, slots=True)
class NodeLoad:
    rooms: int
    participants: int
    draining: bool


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_id: str
    rooms: int
    cpu_percent: float
    draining: bool
    address: str


class CpuMeter:
    """This process's CPU use (percent of one core) since the previous reading."""

    def __init__(self) -> None:
        self._at = time.monotonic()
        self._cpu = time.process_time()

    def read(self) -> float:
        now, cpu = time.monotonic(), time.process_time()
        elapsed = now - self._at
        percent = 100.0 * (cpu - self._cpu) / elapsed if elapsed > 0 else 0.0
        self._at, self._cpu = now, cpu
        return round(percent, 1)


class NodeRegistry:
    def __init__(
        self, link: RedisLink, load: Callable[[], NodeLoad], *, address: str | None
    ) -> None:
        self.link = link
        self.node_id = link.node_id
        self._load = load
        self._address = address or ""
        self._cpu = CpuMeter()
        self._beat = link.redis.register_script(_BEAT)
        self.alive: dict[str, NodeInfo] = {}
        self._silent: dict[str, int] = {}
        self._pids: dict[str, str] = {}  # a node id whose pid changed restarted: lost, then up
        self.lost_listeners: list[Callable[[str], None]] = []
        self.found_listeners: list[Callable[[str], None]] = []
        self.scans = 0
        # Keys of this node that live as long as it does (renewed with every beat).
        self.keep_alive: list[str] = []

    def hash_key(self, node_id: str) -> str:
        return self.link.key("node", node_id)

    def rpc_channel(self, node_id: str) -> str:
        return self.link.key("rpc", node_id)

    @property
    def nodes_key(self) -> str:
        return self.link.key("nodes")

    def is_alive(self, node_id: str) -> bool:
        return node_id == self.node_id or node_id in self.alive

    def seen(self, node_id: str) -> bool:
        """Whether a scan of this registry has ever found the node (alive then)."""
        return node_id in self._pids

    async def beat(self) -> None:
        load = self._load()
        key = self.hash_key(self.node_id)
        async with self.link.redis.pipeline(transaction=False) as pipe:
            await self._beat(
                keys=[key],
                args=[
                    load.rooms,
                    load.participants,
                    self._cpu.read(),
                    int(load.draining),
                    self._address,
                    os.getpid(),
                    int(NODE_TTL_S * 1000),
                ],
                client=pipe,
            )
            pipe.zadd(self.nodes_key, {self.node_id: time.time()})
            for other in self.keep_alive:
                pipe.pexpire(other, int(NODE_TTL_S * 1000))
            await pipe.execute()

    async def leave(self) -> None:
        """A clean stop: the node is gone from the registry at once."""
        async with self.link.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self.hash_key(self.node_id))
            pipe.zrem(self.nodes_key, self.node_id)
            await pipe.execute()

    async def scan(self) -> None:
        redis = self.link.redis
        listed = [str(n) for n in await redis.zrange(self.nodes_key, 0, -1)]
        others = [node for node in listed if node != self.node_id]
        async with redis.pipeline(transaction=False) as pipe:
            for node in others:
                pipe.hgetall(self.hash_key(node))
            hashes = await pipe.execute() if others else []
        subscribers = (
            dict(await redis.pubsub_numsub(*map(self.rpc_channel, others))) if others else {}
        )
        alive: dict[str, NodeInfo] = {}
        for node, fields in zip(others, hashes, strict=True):
            if not fields:
                continue
            if int(subscribers.get(self.rpc_channel(node), 0)) == 0:
                self._silent[node] = self._silent.get(node, 0) + 1
                if self._silent[node] >= SILENT_SCANS:
                    continue
            else:
                self._silent.pop(node, None)
            alive[node] = NodeInfo(
                node_id=node,
                rooms=int(fields.get("rooms", 0)),
                cpu_percent=float(fields.get("cpu", 0.0)),
                draining=fields.get("draining") == "1",
                address=str(fields.get("address", "")),
            )
        lost = [node for node in self.alive if node not in alive]
        for node in alive:
            pid = str(hashes[others.index(node)].get("pid", ""))
            if self._pids.get(node, pid) != pid and node in self.alive:
                lost.append(node)  # restarted between two scans: its old rooms are gone
            self._pids[node] = pid
        found = [node for node in alive if node not in self.alive or node in lost]
        self.alive = alive
        self.scans += 1
        for node in found:
            logger.info("cluster: node %s is up", node)
            for listener in list(self.found_listeners):
                listener(node)
        for node in lost:
            self._silent.pop(node, None)
            logger.warning("cluster: node %s is gone", node)
            for listener in list(self.lost_listeners):
                try:
                    listener(node)
                except Exception:
                    logger.exception("node-lost listener failed for %s", node)
        stale = [n for n in listed if n not in alive and n != self.node_id]
        if stale:
            cutoff = time.time() - FORGET_AFTER_S
            await redis.zremrangebyscore(self.nodes_key, "-inf", cutoff)

    async def run(self) -> None:
        next_beat = 0.0
        while not cancel_requested():
            try:
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + BEAT_S
                    await self.beat()
                await self.scan()
            except (RedisError, OSError) as exc:
                logger.warning("cluster registry: %r", exc)
            await asyncio.sleep(SCAN_S)
        raise asyncio.CancelledError  # asked to stop; a library swallowed the cancellation

    def node_list(self) -> list[NodeInfo]:
        return sorted(self.alive.values(), key=lambda n: n.node_id)
