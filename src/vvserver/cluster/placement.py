"""Room placement: which node hosts a visit's call.

``<prefix>:room:<visit_id>`` holds the node id, with a time to live of ``PLACEMENT_TTL_S``
that the hosting node renews every beat while the room is open. The first join places the
room on the least-loaded live node that is not draining (fewest calls, then least CPU), in one
Lua script: two sides joining on two nodes at the same instant get the same answer, and the
chosen node's call count goes up at once so that a burst of new visits spreads out (and stays
up until the node's next beat counts the room itself: `nodes._BEAT`). A room
stays where it is placed; a placement whose node is gone is replaced (compare-and-set, so only
one replacement wins).
"""

from __future__ import annotations

import logging

from vvserver.cluster.link import RedisLink
from vvserver.cluster.nodes import NodeRegistry

logger = logging.getLogger(__name__)

PLACEMENT_TTL_S = 4.0

# KEYS[1]: the room key; KEYS[2..]: candidate node hashes.
# ARGV[1]: a node known to be gone ("" if none); ARGV[2]: ttl ms; ARGV[3..]: candidate ids.
_PLACE = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return current end
local best, best_key, best_load = nil, nil, nil
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 and redis.call('HGET', KEYS[i], 'draining') ~= '1' then
    local rooms = tonumber(redis.call('HGET', KEYS[i], 'rooms') or '0') or 0
    local cpu = tonumber(redis.call('HGET', KEYS[i], 'cpu') or '0') or 0
    local load = rooms + cpu / 1000
    if best == nil or load < best_load then
      best, best_key, best_load = ARGV[i + 1], KEYS[i], load
    end
  end
end
if best == nil then
  if current then redis.call('DEL', KEYS[1]) end
  return false
end
redis.call('SET', KEYS[1], best, 'PX', ARGV[2])
redis.call('HINCRBY', best_key, 'rooms', 1)
redis.call('HINCRBY', best_key, 'placed', 1)
return best
"""

# KEYS: room keys of this node's open rooms; ARGV[1]: this node; ARGV[2]: ttl ms.
# Renews each; takes back one that expired; returns the keys another node holds now.
_RENEW = """
local lost = {}
for i = 1, #KEYS do
  local current = redis.call('GET', KEYS[i])
  if current == ARGV[1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
  elseif not current then
    redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
  else
    table.insert(lost, KEYS[i])
  end
end
return lost
"""

# KEYS[1]: room key; ARGV[1]: node id. Deletes the placement if that node holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class NoNodeAvailable(RuntimeError):
    """No live node takes new calls (all draining, or the registry is empty)."""


class Placement:
    def __init__(self, link: RedisLink, registry: NodeRegistry) -> None:
        self.link = link
        self.registry = registry
        self._place = link.redis.register_script(_PLACE)
        self._renew = link.redis.register_script(_RENEW)
        self._release = link.redis.register_script(_RELEASE)

    def room_key(self, visit_id: int) -> str:
        return self.link.key("room", visit_id)

    async def current(self, visit_id: int) -> str | None:
        """The node the visit's room is placed on now (None: nowhere, or a node that is gone)."""
        node = await self.link.redis.get(self.room_key(visit_id))
        if node is None or not self.registry.is_alive(str(node)):
            return None
        return str(node)

    async def place(self, visit_id: int) -> str:
        """The node hosting the visit's room: where it is, or the least-loaded live node."""
        node = await self.link.redis.get(self.room_key(visit_id))
        if node is not None and await self._registered(str(node)):
            return str(node)
        gone = "" if node is None else str(node)
        candidates = [self.registry.node_id, *self.registry.alive]
        keys = [self.room_key(visit_id), *map(self.registry.hash_key, candidates)]
        chosen = await self._place(keys=keys, args=[gone, int(PLACEMENT_TTL_S * 1000), *candidates])
        if chosen is None:
            raise NoNodeAvailable("no node takes new calls now")
        if gone:
            logger.warning(
                "visit %s: its node %s is gone; room placed on %s", visit_id, gone, chosen
            )
        return str(chosen)

    async def _registered(self, node: str) -> bool:
        """Whether ``node`` is alive: in this node's view, or (a node that has just started and
        that this one has not seen yet) by its registration in Redis."""
        if self.registry.is_alive(node):
            return True
        if self.registry.seen(node):
            return False  # seen alive before, gone now: this view decides
        return bool(await self.link.redis.exists(self.registry.hash_key(node)))

    async def replace(self, visit_id: int, gone: str) -> str:
        """Place the room again: ``gone`` (its node) is lost or refuses it (draining)."""
        candidates = [n for n in (self.registry.node_id, *self.registry.alive) if n != gone]
        keys = [self.room_key(visit_id), *map(self.registry.hash_key, candidates)]
        chosen = await self._place(keys=keys, args=[gone, int(PLACEMENT_TTL_S * 1000), *candidates])
        if chosen is None:
            raise NoNodeAvailable("no node takes new calls now")
        return str(chosen)

    async def renew(self, visit_ids: list[int]) -> list[int]:
        """Keep this node's rooms placed here; returns the visits another node holds now."""
        if not visit_ids:
            return []
        keys = [self.room_key(v) for v in visit_ids]
        lost = await self._renew(
            keys=keys, args=[self.registry.node_id, int(PLACEMENT_TTL_S * 1000)]
        )
        by_key = dict(zip(keys, visit_ids, strict=True))
        return [by_key[str(key)] for key in lost]

    async def release(self, visit_id: int) -> None:
        """The room closed here: the next join places it afresh."""
        await self._release(keys=[self.room_key(visit_id)], args=[self.registry.node_id])
