"""Signaling: the WebSocket protocol between visitors, kiosks, officers and the media relay."""

from __future__ import annotations

from vvserver.signaling.install import install_signaling

__all__ = ["install_signaling"]
