"""Request/reply between nodes over Redis pub/sub, with a correlation id and a timeout.

A request goes to ``<prefix>:rpc:<node>`` (the node's own channel); the reply comes back on
``<prefix>:reply:<asking node>``. A refusal on the far side (a ``DomainError``) is raised again
here with the same status, code, message and details, so a client sees exactly what it would
have seen on the room's node. Publishing to a channel nobody reads (the node is gone) fails at
once; a node lost while a request waits fails the request when the registry notices.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from vvserver.aio import TaskSet
from vvserver.cluster.codec import dumps
from vvserver.cluster.link import RedisLink
from vvserver.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    Locked,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthenticated,
)

logger = logging.getLogger(__name__)

CALL_TIMEOUT_S = 20.0
_ERRORS: dict[int, type[DomainError]] = {
    cls.status: cls
    for cls in (
        InvalidInput,
        Unauthenticated,
        Forbidden,
        NotFound,
        Conflict,
        Locked,
        TooManyRequests,
        PayloadTooLarge,
    )
}

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


class NodeUnreachable(RuntimeError):
    """The node did not answer (gone, or too slow)."""

    def __init__(self, node: str, why: str) -> None:
        super().__init__(f"node {node}: {why}")
        self.node = node


class Rpc:
    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self.handlers: dict[str, Handler] = {}
        self._pending: dict[str, tuple[str, asyncio.Future[Any]]] = {}
        self._tasks = TaskSet()
        self.requests_sent = 0
        self.requests_served = 0
        link.on(self.channel(link.node_id), self._on_request)
        link.on(link.key("reply", link.node_id), self._on_reply)

    def channel(self, node: str) -> str:
        return self.link.key("rpc", node)

    async def call(
        self, node: str, op: str, args: dict[str, Any], within: float = CALL_TIMEOUT_S
    ) -> Any:
        request_id = uuid.uuid4().hex
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (node, future)
        message = dumps({"id": request_id, "from": self.link.node_id, "op": op, "args": args})
        self.requests_sent += 1
        try:
            receivers = await self.link.redis.publish(self.channel(node), message)
            if receivers == 0:
                raise NodeUnreachable(node, "nobody listens")
            async with asyncio.timeout(within):
                return await future
        except TimeoutError:
            raise NodeUnreachable(node, f"no answer within {within:.0f} s") from None
        finally:
            self._pending.pop(request_id, None)

    def node_lost(self, node: str) -> None:
        """Fail the requests waiting for ``node``."""
        for node_of, future in list(self._pending.values()):
            if node_of == node and not future.done():
                future.set_exception(NodeUnreachable(node, "the node is gone"))

    def _on_reply(self, raw: str) -> None:
        reply = json.loads(raw)
        pending = self._pending.get(str(reply.get("id")))
        if pending is None or pending[1].done():
            return
        future = pending[1]
        if reply.get("ok"):
            future.set_result(reply.get("value"))
            return
        error = reply.get("error") or {}
        cls = _ERRORS.get(int(error.get("status", 500)))
        if cls is None and int(error.get("status", 500)) < 500:
            cls = DomainError
        if cls is None:
            future.set_exception(RuntimeError(f"the room's node failed: {error.get('message')}"))
            return
        future.set_exception(
            cls(str(error.get("message", "")), code=error.get("code"), details=error.get("details"))
        )

    def _on_request(self, raw: str) -> None:
        if self._tasks.closed:
            return
        request = json.loads(raw)
        self._tasks.create(self._serve(request), name=f"rpc {request.get('op')}")

    async def _serve(self, request: dict[str, Any]) -> None:
        self.requests_served += 1
        reply: dict[str, Any] = {"id": request.get("id")}
        handler = self.handlers.get(str(request.get("op")))
        try:
            if handler is None:
                raise DomainError(f"unknown cluster request {request.get('op')!r}")
            reply["value"] = await handler(dict(request.get("args") or {}))
            reply["ok"] = True
        except DomainError as exc:
            reply["ok"] = False
            reply["error"] = {
                "status": exc.status,
                "code": exc.code,
                "message": exc.message,
                "details": exc.details,
            }
        except Exception as exc:
            logger.exception("cluster request %s failed", request.get("op"))
            reply["ok"] = False
            reply["error"] = {"status": 500, "code": "internal_error", "message": repr(exc)}
        await self.link.redis.publish(
            self.link.key("reply", str(request.get("from"))), dumps(reply)
        )

    async def close(self) -> None:
        await self._tasks.close()
        for _, future in self._pending.values():
            if not future.done():
                future.set_exception(NodeUnreachable("?", "this node is stopping"))
