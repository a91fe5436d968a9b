"""The signaling fixtures (the app with its sockets and a media stand-in) for these stories."""

from tests.signaling.conftest import media, ws_client

__all__ = ["media", "ws_client"]
