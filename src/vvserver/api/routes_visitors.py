"""Routes: visitors."""

from __future__ import annotations

from vvserver.api.registry import ApiRouter

router = ApiRouter("visitors")
