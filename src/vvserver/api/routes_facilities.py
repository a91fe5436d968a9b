"""Routes: facilities."""

from __future__ import annotations

from vvserver.api.registry import ApiRouter

router = ApiRouter("facilities")
