"""What one node does, every node sees: three nodes' links to one real Redis, in one process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.cluster.local_cluster import REDIS_URL
from vvserver.cluster.link import RedisLink
from vvserver.cluster.nodes import NodeLoad, NodeRegistry
from vvserver.cluster.placement import Placement
from vvserver.cluster.shared_state import (
    ClusterCounts,
    ClusterEventBus,
    ClusterSessionCache,
    ClusterWakeups,
    RedisPinTries,
    RedisRateLimiter,
)
from vvserver.db.wakeups import note_change
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.errors import TooManyRequests
from vvserver.domain.facilities.presence import (
    KioskPresence,
    ParticipantPresence,
    VisitorAvailability,
)
from vvserver.domain.visits.bus import (
    ChatPostedEvent,
    StaffAlertEvent,
    VisitEndedEvent,
    VisitStartEvent,
)
from vvserver.domain.visits.pin_tries import PinState


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - the change arrives through Redis
            await asyncio.sleep(0.02)


async def test_a_visit_event_published_on_one_node_reaches_every_node_once(
    links: list[RedisLink],
) -> None:
    buses = [ClusterEventBus(link) for link in links]
    queues = [bus.subscribe() for bus in buses]
    for link in links:
        await link.start()
    now = datetime(2030, 5, 1, 9, 0, tzinfo=UTC)
    start = VisitStartEvent(7, 1, 2, 3, now, now + timedelta(minutes=30))
    buses[0].publish(start)
    buses[1].publish(VisitEndedEvent(8, "cancelled", "the unit is locked down"))
    buses[2].publish(StaffAlertEvent("pin_locked", 9, 3, 1, "wrong kiosk PIN", now))
    buses[2].publish(ChatPostedEvent(9))
    for queue in queues:
        got = [await asyncio.wait_for(queue.get(), 5) for _ in range(4)]
        assert start in got
        assert VisitEndedEvent(8, "cancelled", "the unit is locked down") in got
        assert StaffAlertEvent("pin_locked", 9, 3, 1, "wrong kiosk PIN", now) in got
        assert ChatPostedEvent(9) in got
    await asyncio.sleep(0.3)
    assert all(queue.empty() for queue in queues)  # each once, no echo


async def test_a_kiosk_online_on_one_node_is_online_on_all_and_offline_when_its_node_dies(
    links: list[RedisLink],
) -> None:
    counts = [ClusterCounts(link) for link in links]
    kiosks = [KioskPresence(c) for c in counts]
    participants = [ParticipantPresence(c) for c in counts]
    for link in links:
        await link.start()
    kiosks[0].connected(42)
    participants[1].joined(7, "visitor")
    await eventually(lambda: all(k.is_online(42) for k in kiosks))
    await eventually(lambda: all(p.is_joined(7, "visitor") for p in participants))
    assert kiosks[2].online() == [42]
    assert not participants[2].is_joined(7, "kiosk")
    # A node that starts later reads what the others hold.
    late = ClusterCounts(RedisLink(REDIS_URL, links[0].prefix, "late/0"))
    try:
        await late.link.start()
        await late.load("node0/0")
        assert KioskPresence(late).is_online(42)
    finally:
        await late.link.close()
    # Node 0 is lost: its kiosk is offline everywhere else.
    counts[1].node_lost("node0/0")
    assert not kiosks[1].is_online(42)
    kiosks[0].disconnected(42)
    await eventually(lambda: not kiosks[2].is_online(42))


async def test_a_visitor_available_on_one_node_can_be_rung_from_every_node(
    links: list[RedisLink],
) -> None:
    """Visit now: "available now" is per open visitor page (socket), counted cluster-wide."""
    counts = [ClusterCounts(link) for link in links]
    available = [VisitorAvailability(c) for c in counts]
    for link in links:
        await link.start()
    available[0].available(5)  # two pages of visitor 5 on two nodes
    available[1].available(5)
    await eventually(lambda: all(a.is_available(5) for a in available))
    assert not available[2].is_available(6)
    available[0].unavailable(5)  # one page switched off: the other still counts
    await asyncio.sleep(0.2)
    assert available[2].is_available(5)
    counts[2].node_lost("node1/0")  # the other page's node is lost
    assert not available[2].is_available(5)


async def test_signing_out_on_one_node_drops_the_cached_session_on_every_node(
    links: list[RedisLink],
) -> None:
    caches = [ClusterSessionCache(link) for link in links]
    for link in links:
        await link.start()
    officer = Principal(role="officer", account_id=5, facility_id=1, agency_id=1)
    now = datetime.now(UTC)
    for cache in caches:
        cache.put("hash-a", officer, now, 30)
        cache.put("hash-b", officer, now, 30)
        cache.put("hash-c", Principal(role="visitor", account_id=6), now, 30)
    caches[0].forget("hash-a")
    await eventually(lambda: all(c.get("hash-a") is None for c in caches))
    assert all(c.get("hash-b") is not None for c in caches)
    caches[2].forget_account(5)
    await eventually(lambda: all(c.get("hash-b") is None for c in caches))
    assert all(c.get("hash-c") is not None for c in caches)


class FakeSession:
    def __init__(self) -> None:
        self.info: dict[str, object] = {}


async def test_a_commit_on_one_node_wakes_the_workers_of_every_node(
    links: list[RedisLink],
) -> None:
    wakeups = [ClusterWakeups(link) for link in links]
    for link in links:
        await link.start()
    session = FakeSession()
    note_change(session, "mailer")
    wakeups[1].after_commit(session)
    await eventually(lambda: all(w.mailer.woken() for w in wakeups))
    assert not any(w.scheduler.woken() for w in wakeups)


async def test_rate_limits_count_tries_on_every_node(links: list[RedisLink]) -> None:
    limiters = [RedisRateLimiter(link) for link in links]
    for i in range(6):
        await limiters[i % 3].hit("login", "203.0.113.9", 6)
    for limiter in limiters:
        with pytest.raises(TooManyRequests) as refused:
            await limiter.hit("login", "203.0.113.9", 6)
        assert 1 <= refused.value.details["retry_after"] <= 60
    await limiters[0].hit("login", "203.0.113.10", 6)  # another client counts alone


async def test_pin_tries_are_serialised_and_shared_across_nodes(links: list[RedisLink]) -> None:
    stores = [RedisPinTries(link) for link in links]
    now = datetime.now(UTC)
    keep = now + timedelta(minutes=30)

    async def wrong_try(store: RedisPinTries) -> None:
        async with store.guard(11):
            state = await store.get(11)
            await asyncio.sleep(0.01)  # the check itself, while the guard is held
            await store.put(11, PinState(wrong=state.wrong + 1), now=now, keep_until=keep)

    await asyncio.gather(*(wrong_try(stores[i % 3]) for i in range(9)))
    assert (await stores[2].get(11)).wrong == 9  # no try lost to a race
    locked = now + timedelta(minutes=15)
    await stores[0].put(11, PinState(False, 5, locked), now=now, keep_until=keep)
    assert (await stores[1].get(11)).locked_until == locked
    assert await stores[1].get(12) == PinState()
    assert 0 < await links[0].redis.ttl(links[0].key("pin", 11)) <= 30 * 60


async def test_two_sides_placing_one_visit_on_two_nodes_at_once_get_one_node(
    links: list[RedisLink],
) -> None:
    registries = [NodeRegistry(link, lambda: NodeLoad(0, 0, False), address=None) for link in links]
    placements = [
        Placement(link, registry) for link, registry in zip(links, registries, strict=True)
    ]
    for link in links:
        await link.start()
    for registry in registries:
        await registry.beat()
    for registry in registries:
        await registry.scan()
    for visit_id in range(100, 120):
        nodes = await asyncio.gather(*(p.place(visit_id) for p in placements))
        assert len(set(nodes)) == 1, nodes
    # The placements spread over the nodes (each placement counts at once).
    chosen = [await placements[0].place(v) for v in range(100, 120)]
    assert {chosen.count(node) for node in set(chosen)} <= {6, 7}
    assert len(set(chosen)) == 3


async def test_rooms_placed_but_not_yet_open_still_count_when_their_node_beats(
    links: list[RedisLink],
) -> None:
    # A burst of joins: rooms are placed on a node a moment before they open there. A beat
    # in between must not forget them, or the next joins pile onto that node.
    open_rooms = {link.node_id: 0 for link in links}

    def load_of(node: str) -> Callable[[], NodeLoad]:
        return lambda: NodeLoad(open_rooms[node], 0, False)

    registries = [NodeRegistry(link, load_of(link.node_id), address=None) for link in links]
    placements = [Placement(link, r) for link, r in zip(links, registries, strict=True)]
    for link in links:
        await link.start()
    for registry in registries:
        await registry.beat()
    for registry in registries:
        await registry.scan()
    first = [await placements[0].place(v) for v in range(300, 309)]
    assert sorted(first.count(node) for node in open_rooms) == [3, 3, 3]
    # Node 0's rooms have opened, the others' not yet; every node beats.
    open_rooms["node0/0"] = 3
    for registry in registries:
        await registry.beat()
    second = [await placements[1].place(v) for v in range(309, 318)]
    assert sorted(second.count(node) for node in open_rooms) == [3, 3, 3]
    # Once every room is open, the next beats report the nodes' own counts again.
    open_rooms.update({node: 6 for node in open_rooms})
    for _ in range(2):
        for registry in registries:
            await registry.beat()
    redis, hash_key = links[0].redis, registries[0].hash_key
    assert [await redis.hget(hash_key(node), "rooms") for node in open_rooms] == ["6", "6", "6"]


async def test_a_node_that_restarts_under_the_same_id_starts_its_counts_afresh(
    links: list[RedisLink],
) -> None:
    watcher = KioskPresence(ClusterCounts(links[1]))
    old = KioskPresence(ClusterCounts(links[0]))
    await links[0].start()
    await links[1].start()
    old.connected(5)
    old.connected(6)
    await eventually(lambda: watcher.is_online(5) and watcher.is_online(6))
    await links[0].close()  # killed: no disconnects were sent
    reborn_link = RedisLink(REDIS_URL, links[0].prefix, links[0].node_id)
    reborn = KioskPresence(ClusterCounts(reborn_link))
    try:
        await reborn.counts.reset_own()  # type: ignore[attr-defined]
        await reborn_link.start()
        reborn.connected(6)
        await eventually(lambda: not watcher.is_online(5))
        assert watcher.is_online(6)
    finally:
        await reborn_link.close()


async def test_a_draining_node_takes_no_new_room_and_a_lost_nodes_rooms_are_placed_again(
    links: list[RedisLink],
) -> None:
    def load_of(node: str) -> Callable[[], NodeLoad]:
        return lambda: NodeLoad(0, 0, node == "node0/0")  # node 0 is draining

    registries = [NodeRegistry(link, load_of(link.node_id), address=None) for link in links]
    placements = [Placement(link, r) for link, r in zip(links, registries, strict=True)]
    for link in links:
        await link.start()
    for registry in registries:
        await registry.beat()
    for registry in registries:
        await registry.scan()
    # Joins arriving on the draining node 0 place their rooms on nodes 1 and 2.
    chosen = {await placements[0].place(visit_id) for visit_id in range(200, 210)}
    assert chosen == {"node1/0", "node2/0"}
    # Node 1 is lost: a placement pointing at it is replaced, never by the draining node.
    hosted_on_1 = [v for v in range(200, 210) if await placements[2].current(v) == "node1/0"]
    assert hosted_on_1
    await links[1].close()
    for _ in range(3):  # its request channel is silent on two scans in a row
        await registries[2].scan()
    assert not registries[2].is_alive("node1/0")
    for visit_id in hosted_on_1:
        assert await placements[2].current(visit_id) is None
        assert await placements[2].place(visit_id) == "node2/0"


async def test_a_quiet_nodes_presence_stays_readable_while_the_node_lives(
    links: list[RedisLink],
) -> None:
    counts = ClusterCounts(links[0])
    registry = NodeRegistry(links[0], lambda: NodeLoad(0, 0, False), address=None)
    registry.keep_alive.append(counts.hash_key(links[0].node_id))
    await links[0].start()
    KioskPresence(counts).connected(77)
    await links[0].flush()
    for _ in range(5):  # longer than a node's time to live, with nothing changing
        await registry.beat()
        await asyncio.sleep(1.0)
    late = ClusterCounts(links[1])
    await links[1].start()
    await late.load(links[0].node_id)
    assert KioskPresence(late).is_online(77)
