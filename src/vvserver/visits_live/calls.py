"""What the live-call API needs from the media service, as a Protocol.

One process: ``VisitMedia`` itself. A cluster: ``vvserver.cluster.ClusterMedia``, which runs
each action on the node that hosts the visit's room.
"""

from __future__ import annotations

from typing import Protocol

from vvserver.domain.accounts.principal import Principal
from vvserver.visits_live.figures import VisitQuality


class LiveCalls(Protocol):
    async def monitor(
        self,
        visit_id: int,
        principal: Principal,
        offer_sdp: str,
        *,
        request_id: str | None = None,
    ) -> str: ...

    async def stop_monitor(
        self, visit_id: int, principal: Principal, *, request_id: str | None = None
    ) -> bool: ...

    async def terminate(
        self,
        visit_id: int,
        principal: Principal,
        reason: str,
        *,
        request_id: str | None = None,
    ) -> None: ...

    async def quality(self, visit_id: int, principal: Principal) -> VisitQuality: ...
