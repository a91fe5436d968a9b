"""What visitor and kiosk sockets share: offers (with trickled candidates), answers, leaving."""

from __future__ import annotations

import logging
import time
from abc import abstractmethod

from vvserver.app_keys import HUB
from vvserver.domain.errors import Conflict, DomainError
from vvserver.signaling.connection import Connection
from vvserver.signaling.ice import PendingOffer
from vvserver.signaling.media_port import MediaPort, ParticipantRole
from vvserver.signaling.protocol import (
    AckMessage,
    AnswerMessage,
    AnyClientMessage,
    IceCandidateMessage,
    LeaveMessage,
    OfferMessage,
    ParticipantMessage,
    ProtocolError,
)
from vvserver.signaling.socket_loop import Channel

logger = logging.getLogger(__name__)

TRICKLE_WAIT_S = 5.0  # an offer waits this long for its end-of-candidates, then goes as is


class ParticipantChannel(Channel):
    participant: ParticipantRole

    pending: PendingOffer | None = None
    pending_deadline: float | None = None

    @abstractmethod
    async def allowed_visit(self, visit_id: int | None) -> int:
        """The visit this socket may join (NotFound for another's, InvalidInput if missing)."""

    def media_sessions(self, visit_ids: list[int]) -> list[int]:
        """Of these visits, those whose call holds this side's media connection now.

        Sent in ``welcome``: a client whose peer connection the server no longer has (a
        restarted server, a connection the relay dropped) re-offers at once instead of waiting
        for ICE to fail.
        """
        media = self.app[HUB].media
        if media is None:
            return []
        active = []
        for visit_id in visit_ids:
            room = media.rooms.get(visit_id)
            if room is not None and not room.closed and self.participant in room.participant_roles:
                active.append(visit_id)
        return active

    def call_coming(self) -> None:
        """This socket may offer soon: the media stack starts loading (the first call of the
        process), so the offer does not wait for it."""
        media = self.app[HUB].media
        if media is not None:
            media.prepare()

    async def check_join(self, visit_id: int) -> None:
        """Refuse an offer for a visit this side may not join yet (e.g. kiosk PIN missing)."""
        return None

    async def handle_other(self, conn: Connection, message: AnyClientMessage) -> None:
        raise ProtocolError("not_allowed", f"{message.type} is not a {self.role} message")

    async def handle(self, conn: Connection, message: AnyClientMessage) -> None:
        if isinstance(message, OfferMessage):
            visit_id = await self.allowed_visit(message.visit_id)
            await self.check_join(visit_id)
            pending = PendingOffer(visit_id, message.sdp)
            if message.candidates_complete:
                await self._send_offer(conn, pending)
            else:
                self.pending = pending
                self.pending_deadline = time.monotonic() + TRICKLE_WAIT_S
        elif isinstance(message, IceCandidateMessage):
            if self.pending is None:
                raise ProtocolError("no_pending_offer", "send an offer before its candidates")
            if message.candidate == "":
                pending, self.pending, self.pending_deadline = self.pending, None, None
                await self._send_offer(conn, pending)
            else:
                self.pending.add(message.candidate, message.sdp_mid, message.sdp_mline_index)
        elif isinstance(message, LeaveMessage):
            visit_id = await self.allowed_visit(message.visit_id)
            await self._media().leave(visit_id, self.participant)
            self.app[HUB].left(visit_id, self.participant, conn)
            await conn.send(AckMessage(ref="leave", visit_id=visit_id))
        else:
            await self.handle_other(conn, message)

    def next_tick(self) -> float | None:
        return self.pending_deadline

    async def tick(self, conn: Connection) -> None:
        deadline = self.pending_deadline
        if self.pending is None or deadline is None or time.monotonic() < deadline:
            return
        pending, self.pending, self.pending_deadline = self.pending, None, None
        logger.info("visit %s: no end of candidates; offering what came", pending.visit_id)
        try:
            await self._send_offer(conn, pending)
        except DomainError as exc:
            await conn.error(exc.code, exc.message, "offer")

    def _media(self) -> MediaPort:
        media = self.app[HUB].media
        if media is None:
            raise Conflict("calls are not available on this server", code="media_unavailable")
        return media

    async def _send_offer(self, conn: Connection, pending: PendingOffer) -> None:
        media = self._media()
        answer = await media.join(pending.visit_id, self.participant, pending.complete_sdp())
        hub = self.app[HUB]
        hub.joined(pending.visit_id, self.participant, conn)
        hub.follow_room(pending.visit_id, media.rooms.get(pending.visit_id))
        await conn.send(AnswerMessage(visit_id=pending.visit_id, sdp=answer))
        # Room events reach this socket from now on: say where the other side already stands
        # (a visitor whose media flowed before the kiosk joined sent its `connected` earlier).
        for role in ("visitor", "kiosk"):
            state = hub.figures.state(pending.visit_id, role)
            if role != self.participant and state != "none":
                await conn.send(
                    ParticipantMessage(visit_id=pending.visit_id, role=role, state=state)
                )
