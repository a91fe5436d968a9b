"""SRTP protect/unprotect on one of aiortc's pylibsrtp sessions, without per-call allocations.

pylibsrtp's `Session.protect` checks its argument, allocates the length cell (`ffi.new`) and
looks up the libsrtp function on every call; on the relay's packet path (one unprotect per
packet received, one protect per packet sent to each subscriber) that wrapper cost more than
the cipher. `LeanSrtp` calls the same libsrtp functions on the same session, through the same
buffer, with the length cell allocated once. The event loop runs each call to completion, so
sharing the session's buffer with aiortc's own calls (RTCP) is what pylibsrtp itself does.
"""

from __future__ import annotations

import logging
import os
from types import ModuleType
from typing import Any, Protocol

import pylibsrtp
from pylibsrtp import _binding

logger = logging.getLogger(__name__)

_ffi: Any = _binding.ffi
_lib: Any = _binding.lib

# Set to 0 to run the relay's per-packet steps in Python (the C extension's measurements
# compare both; the relay also falls back to Python when the extension was not built).
NATIVE_ENV = "VV_MEDIA_NATIVE"  # settings.media_native
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


def _load_native() -> ModuleType | None:
    if os.environ.get(NATIVE_ENV, "1").strip().lower() in _FALSE:  # pydantic's false words
        return None
    try:
        from vvserver.media import _rtp_native
    except ImportError:  # pragma: no cover - built by every install of the package
        logger.warning("the relay's C extension is missing: per-packet work runs in Python")
        return None
    address = _ffi.cast("uintptr_t", _ffi.addressof(_lib, "srtp_protect"))
    unprotect_address = _ffi.cast("uintptr_t", _ffi.addressof(_lib, "srtp_unprotect"))
    _rtp_native.set_srtp_functions(int(address), int(unprotect_address))
    return _rtp_native


# vvserver.media._rtp_native with libsrtp's functions set, or None (chosen once, at import).
NATIVE = _load_native()


def log_media_path(wanted_native: bool) -> None:
    """Say at start which path the relay's per-packet work takes (settings.media_native is
    read from the same VV_MEDIA_NATIVE as NATIVE was, when this module loaded)."""
    if NATIVE is not None:
        logger.info("media: per-packet SRTP and header work in the C extension")
    elif wanted_native:
        logger.warning("media: the C extension is not available: per-packet work in Python")
    else:
        logger.info("media: per-packet SRTP and header work in Python (VV_MEDIA_NATIVE=0)")


def srtp_context(session: pylibsrtp.Session) -> int:
    """The address of a pylibsrtp session's libsrtp context (for the C extension; the
    caller keeps the session alive while it is used)."""
    inner: Any = session
    return int(_ffi.cast("uintptr_t", inner._srtp[0]))


# pylibsrtp's buffer is 1500 bytes; a protected packet grows by up to 16 bytes (its trailer).
_BUFFER_BYTES = 1500
_MAX_TRAILER = 144  # pylibsrtp's SRTP_MAX_TRAILER_LEN: what it keeps free for protect


class LeanSrtp:
    """`protect`/`unprotect` of one pylibsrtp `Session` (the session is kept alive here)."""

    __slots__ = (
        "_buffer",
        "_cdata",
        "_length",
        "_protect",
        "_srtp",
        "_unprotect",
        "context",
        "session",
    )

    def __init__(self, session: pylibsrtp.Session) -> None:
        self.session = session
        inner: Any = session
        self._srtp = inner._srtp[0]
        self._cdata = inner._cdata
        self._buffer = inner._buffer
        if len(self._buffer) != _BUFFER_BYTES:
            raise RuntimeError("pylibsrtp's session buffer is not what LeanSrtp expects")
        self._length = _ffi.new("int *")
        self._protect = _lib.srtp_protect
        self._unprotect = _lib.srtp_unprotect
        self.context = srtp_context(session)  # for the C extension's calls

    def protect(self, packet: bytes) -> bytes:
        size = len(packet)
        if size > _BUFFER_BYTES - _MAX_TRAILER:
            raise ValueError("packet is too long")
        buffer, length = self._buffer, self._length
        buffer[0:size] = packet
        length[0] = size
        status = self._protect(self._srtp, self._cdata, length)
        if status:
            raise pylibsrtp.Error(f"srtp_protect failed: {status}")
        protected: bytes = buffer[0 : length[0]]
        return protected

    def unprotect(self, packet: bytes) -> bytes:
        # protect's steps with libsrtp's other function: written out, not shared through a
        # helper, to keep one Python call less per packet.
        size = len(packet)
        if size > _BUFFER_BYTES:
            raise ValueError("packet is too long")
        buffer, length = self._buffer, self._length
        buffer[0:size] = packet
        length[0] = size
        status = self._unprotect(self._srtp, self._cdata, length)
        if status:
            raise pylibsrtp.Error(f"srtp_unprotect failed: {status}")
        plain: bytes = buffer[0 : length[0]]
        return plain


class SrtpCalls(Protocol):
    session: Any

    def protect(self, packet: bytes) -> bytes: ...

    def unprotect(self, packet: bytes) -> bytes: ...


class _SessionCalls:
    """Any other session object (a test's stand-in): its own methods."""

    __slots__ = ("session",)

    def __init__(self, session: Any) -> None:
        self.session = session

    def protect(self, packet: bytes) -> bytes:
        protected: bytes = self.session.protect(packet)
        return protected

    def unprotect(self, packet: bytes) -> bytes:
        plain: bytes = self.session.unprotect(packet)
        return plain


def srtp_calls(session: Any) -> SrtpCalls:
    """`LeanSrtp` on a pylibsrtp session; the session's own methods on anything else."""
    if isinstance(session, pylibsrtp.Session):
        return LeanSrtp(session)
    return _SessionCalls(session)
