"""The media stack, loaded when a process first needs it instead of at start.

The relay's room (``vvserver.media.room``) imports aiortc, aioice (with dnspython), PyAV
(FFmpeg's libraries), cryptography, pylibsrtp and the relay's forwarding modules: 40-50 MB
resident, ~0.2-0.5 s of imports. A server that has had no call never loads them
(docs/performance.md, "Resident memory"). What the rest of the server needs from media
without a call (the registry, the room's events and refusals, offer checks, recording
adoption) imports none of them.

`prepare()` starts loading in a thread as soon as a call is coming (a participant's socket
opens for a visit), so the first offer seldom waits for it; `ready()` is what every path that
runs a call awaits first (and starts the load if nothing did). `configure()` takes the
settings the stack needs at start and applies them when it loads (at once if it is loaded).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# Importing the room imports the whole stack (participant, forwarding, aiortc, av, ...).
ROOM_MODULE = "vvserver.media.room"
HOOKS_MODULE = "vvserver.media.aiortc_hooks"


@dataclass(frozen=True, slots=True)
class StackSettings:
    ice_host_addresses: tuple[str, ...] | None  # None: the machine's interfaces
    wanted_native: bool  # settings.media_native: say at load which per-packet path runs


_lock = threading.Lock()
_loading: Future[None] | None = None  # set once a load started; done once it finished
_pending: StackSettings | None = None  # configure()'d before the stack was loaded


def _apply(settings: StackSettings) -> None:
    from vvserver.media.aiortc_hooks import set_ice_host_addresses
    from vvserver.media.srtp_session import log_media_path

    set_ice_host_addresses(settings.ice_host_addresses)
    log_media_path(settings.wanted_native)


def _apply_pending() -> None:
    """Under `_lock`, once the stack is imported."""
    global _pending
    if _pending is not None:
        _apply(_pending)
        _pending = None


def configure(*, ice_host_addresses: Sequence[str] | None, wanted_native: bool) -> None:
    """The app's start: applied now when the stack is already loaded (a test that imported
    it, a process that had a call), else right after it loads, before any room opens."""
    global _pending
    settings = StackSettings(
        tuple(ice_host_addresses) if ice_host_addresses else None, wanted_native
    )
    with _lock:
        loaded = HOOKS_MODULE in sys.modules and (_loading is None or _loading.done())
        if not loaded:
            _pending = settings
            return
        _apply(settings)


def loaded() -> bool:
    """Whether this process has loaded the media stack and applied its settings."""
    loading = _loading
    return loading is not None and loading.done() and loading.exception() is None


def _load(future: Future[None]) -> None:
    global _loading
    started = time.perf_counter()
    try:
        importlib.import_module(ROOM_MODULE)
        with _lock:
            _apply_pending()
    except BaseException as exc:
        with _lock:
            _loading = None  # the next call tries again (and fails the same way, said loudly)
        logger.exception("media: loading the media stack failed")
        future.set_exception(exc)
        return
    logger.info("media: stack loaded in %.2f s", time.perf_counter() - started)
    future.set_result(None)


def prepare() -> Future[None]:
    """Start loading the stack in a thread (once); the future is done once it is loaded."""
    global _loading
    with _lock:
        if _loading is not None:
            return _loading
        future: Future[None] = Future()
        _loading = future
        if ROOM_MODULE in sys.modules:  # imported already (a test, the headless client)
            _apply_pending()
            future.set_result(None)
            return future
    threading.Thread(target=_load, args=(future,), name="media stack load", daemon=True).start()
    return future


async def ready() -> None:
    """Return once the stack is loaded (loading it if nothing started to); raises what the
    import raised."""
    future = prepare()
    if future.done():
        future.result()
        return
    await asyncio.wrap_future(future)
