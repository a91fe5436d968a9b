"""The base of every server message (``protocol`` and ``ring_messages`` build on it)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class ServerMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    v: Literal[1] = 1
