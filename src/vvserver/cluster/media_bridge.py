"""The signaling bridge: any node takes any socket; the call runs on the room's node.

``ClusterMedia`` is what signaling (``hub.media``) and the live-call API talk to in a cluster.
Each request asks the placement for the visit's node, then calls this node's ``VisitMedia``
or sends the request to the room's node (``rpc``) and returns its answer or its refusal as is.
The answer's ICE candidates carry the room node's address, so media goes straight there.
``rooms.get(visit_id)`` gives the local room, or a ``RemoteRoom`` fed from Redis.

A room node that is gone (or refuses new rooms while draining, ``node_draining``) makes the
bridge place the room again on a live node and retry: the client's re-offer after a node loss
lands in a new room, same visit, same clock.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TypeVar

from vvserver.cluster.placement import NoNodeAvailable, Placement
from vvserver.cluster.remote_room import RemoteRoom
from vvserver.cluster.rpc import NodeUnreachable, Rpc
from vvserver.domain.accounts.principal import Principal
from vvserver.domain.errors import Conflict
from vvserver.media.room_events import Role
from vvserver.visits_live import VisitMedia, VisitQuality
from vvserver.visits_live.figures import MediaMetrics, ParticipantQuality

if TYPE_CHECKING:
    from vvserver.media.room import VisitRoom

logger = logging.getLogger(__name__)

T = TypeVar("T")
ATTEMPTS = 3
# Refusals that mean "not here": the bridge places the room again and retries.
NOT_HERE = frozenset({"node_draining", "wrong_node"})


def principal_json(principal: Principal) -> dict[str, Any]:
    return {
        "role": principal.role,
        "account_id": principal.account_id,
        "kiosk_id": principal.kiosk_id,
        "agency_id": principal.agency_id,
        "facility_id": principal.facility_id,
        "email": principal.email,
    }


def principal_from(data: dict[str, Any]) -> Principal:
    return Principal(
        role=data["role"],
        account_id=data.get("account_id"),
        kiosk_id=data.get("kiosk_id"),
        agency_id=data.get("agency_id"),
        facility_id=data.get("facility_id"),
        email=data.get("email"),
    )


def quality_from(data: dict[str, Any]) -> VisitQuality:
    return VisitQuality(
        visit_id=int(data["visit_id"]),
        call_open=bool(data["call_open"]),
        monitors=int(data["monitors"]),
        participants=tuple(ParticipantQuality(**p) for p in data["participants"]),
    )


def unavailable() -> Conflict:
    return Conflict("no media server can take this call now; try again", code="media_unavailable")


class ClusterMedia:
    """A ``MediaPort`` (signaling) and the live-call API's media, across the cluster."""

    def __init__(self, local: VisitMedia, placement: Placement, rpc: Rpc) -> None:
        self.local = local
        self.placement = placement
        self.rpc = rpc
        self.node_id = placement.registry.node_id
        self._remote: dict[int, RemoteRoom] = {}
        # A visit whose room node was lost: its participants' sockets here are told (the hub).
        self.media_lost: Callable[[int], Awaitable[None]] | None = None
        self.retries = 0

    # --- rooms (RoomLookup) ----------------------------------------------------------------

    @property
    def rooms(self) -> ClusterMedia:
        return self

    def get(self, visit_id: int) -> VisitRoom | RemoteRoom | None:
        room = self.local.rooms.get(visit_id)
        if room is not None:
            return room
        remote = self._remote.get(visit_id)
        if remote is None:
            return None
        if remote.closed:
            del self._remote[visit_id]  # ended, or its node is gone
            return None
        return remote

    def remote_room(self, visit_id: int) -> RemoteRoom | None:
        return self._remote.get(visit_id)

    def _follow_remote(self, visit_id: int, node: str) -> None:
        if node == self.node_id:
            return
        remote = self._remote.get(visit_id)
        if remote is None or remote.closed or remote.node != node:
            if remote is not None:
                remote.lost()
            self._remote[visit_id] = RemoteRoom(visit_id, node)

    # --- routing ---------------------------------------------------------------------------

    async def _placed(
        self,
        visit_id: int,
        op: str,
        args: dict[str, Any],
        here: Callable[[], Awaitable[T]],
        *,
        place: bool,
    ) -> tuple[str | None, T | Any]:
        """Run ``op`` on the visit's node (placing the room first with ``place``)."""
        gone: str | None = None
        for _ in range(ATTEMPTS):
            try:
                if gone is not None:
                    node: str | None = await self.placement.replace(visit_id, gone)
                elif place:
                    node = await self.placement.place(visit_id)
                else:
                    node = await self.placement.current(visit_id)
            except NoNodeAvailable:
                raise unavailable() from None
            if node is None or node == self.node_id:
                if node is not None and self._draining() and self.local.rooms.get(visit_id) is None:
                    gone = node  # this node takes no new rooms: place it elsewhere
                    self.retries += 1
                    continue
                return node, await here()
            try:
                return node, await self.rpc.call(node, op, {"visit_id": visit_id, **args})
            except NodeUnreachable as exc:
                logger.warning("visit %s: %s; placing the room again", visit_id, exc)
                gone = node
            except Conflict as refused:
                if refused.code not in NOT_HERE:
                    raise
                logger.info("visit %s: node %s refused (%s)", visit_id, node, refused.code)
                gone = node
            self.retries += 1
        raise unavailable()

    def _draining(self) -> bool:
        # ``VisitMedia.draining`` (set by the node's drain, docs/scaling.md).
        return bool(getattr(self.local, "draining", False))

    # --- participants (MediaPort) ----------------------------------------------------------

    def prepare(self) -> None:
        # The room may be placed here: load this node's media stack (the room's node, if
        # another, loads its own at the offer).
        self.local.prepare()

    async def join(self, visit_id: int, role: Role, offer_sdp: str) -> str:
        node, answer = await self._placed(
            visit_id,
            "join",
            {"role": role, "sdp": offer_sdp},
            lambda: self.local.join(visit_id, role, offer_sdp),
            place=True,
        )
        if node is not None:
            self._follow_remote(visit_id, node)
        return str(answer)

    async def leave(self, visit_id: int, role: Role) -> None:
        await self._placed(
            visit_id, "leave", {"role": role}, lambda: self.local.leave(visit_id, role), place=False
        )

    # --- staff -----------------------------------------------------------------------------

    async def monitor(
        self,
        visit_id: int,
        principal: Principal,
        offer_sdp: str,
        *,
        request_id: str | None = None,
    ) -> str:
        _, answer = await self._placed(
            visit_id,
            "monitor",
            {"principal": principal_json(principal), "sdp": offer_sdp, "request_id": request_id},
            lambda: self.local.monitor(visit_id, principal, offer_sdp, request_id=request_id),
            place=True,
        )
        return str(answer)

    async def stop_monitor(
        self, visit_id: int, principal: Principal, *, request_id: str | None = None
    ) -> bool:
        _, stopped = await self._placed(
            visit_id,
            "stop_monitor",
            {"principal": principal_json(principal), "request_id": request_id},
            lambda: self.local.stop_monitor(visit_id, principal, request_id=request_id),
            place=False,
        )
        return bool(stopped)

    async def terminate(
        self,
        visit_id: int,
        principal: Principal,
        reason: str,
        *,
        request_id: str | None = None,
    ) -> None:
        await self._placed(
            visit_id,
            "terminate",
            {"principal": principal_json(principal), "reason": reason, "request_id": request_id},
            lambda: self.local.terminate(visit_id, principal, reason, request_id=request_id),
            place=False,
        )

    async def quality(self, visit_id: int, principal: Principal) -> VisitQuality:
        _, value = await self._placed(
            visit_id,
            "quality",
            {"principal": principal_json(principal)},
            lambda: self.local.quality(visit_id, principal),
            place=False,
        )
        if isinstance(value, VisitQuality):
            return value
        return quality_from(value)

    def metrics(self) -> MediaMetrics:
        return self.local.metrics()

    # --- node loss -------------------------------------------------------------------------

    async def node_lost(self, node: str) -> None:
        """Rooms that were on ``node`` are gone: end their streams, tell their sockets here."""
        for visit_id in [v for v, r in self._remote.items() if r.closed]:
            del self._remote[visit_id]
        for remote in [r for r in self._remote.values() if r.node == node]:
            remote.lost()
            notify = self.media_lost
            if notify is not None:
                try:
                    await notify(remote.visit_id)
                except Exception:
                    logger.exception("visit %s: could not tell its sockets", remote.visit_id)

    # --- the far side of each request ------------------------------------------------------

    def serve(self) -> None:
        """Answer the other nodes' requests for rooms hosted here."""
        self.rpc.handlers.update(
            {
                "join": self._serve_join,
                "leave": self._serve_leave,
                "monitor": self._serve_monitor,
                "stop_monitor": self._serve_stop_monitor,
                "terminate": self._serve_terminate,
                "quality": self._serve_quality,
            }
        )

    async def _ensure_here(self, visit_id: int) -> None:
        """Open no room for a visit placed elsewhere meanwhile, nor while draining."""
        if self.local.rooms.get(visit_id) is not None:
            return
        if self._draining():
            raise Conflict("this media server is draining", code="node_draining")
        if await self.placement.current(visit_id) != self.node_id:
            raise Conflict("the visit's call is on another node", code="wrong_node")

    async def _serve_join(self, args: dict[str, Any]) -> str:
        visit_id = int(args["visit_id"])
        await self._ensure_here(visit_id)
        return await self.local.join(visit_id, args["role"], str(args["sdp"]))

    async def _serve_leave(self, args: dict[str, Any]) -> None:
        await self.local.leave(int(args["visit_id"]), args["role"])

    async def _serve_monitor(self, args: dict[str, Any]) -> str:
        visit_id = int(args["visit_id"])
        await self._ensure_here(visit_id)
        return await self.local.monitor(
            visit_id,
            principal_from(args["principal"]),
            str(args["sdp"]),
            request_id=args.get("request_id"),
        )

    async def _serve_stop_monitor(self, args: dict[str, Any]) -> bool:
        return await self.local.stop_monitor(
            int(args["visit_id"]),
            principal_from(args["principal"]),
            request_id=args.get("request_id"),
        )

    async def _serve_terminate(self, args: dict[str, Any]) -> None:
        await self.local.terminate(
            int(args["visit_id"]),
            principal_from(args["principal"]),
            str(args["reason"]),
            request_id=args.get("request_id"),
        )

    async def _serve_quality(self, args: dict[str, Any]) -> dict[str, Any]:
        quality = await self.local.quality(int(args["visit_id"]), principal_from(args["principal"]))
        return asdict(quality)
