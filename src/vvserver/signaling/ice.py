"""ICE for clients: the servers they should use, and trickled candidates folded into the offer.

The media relay (aiortc) does not trickle: it needs the offer's candidates when it applies the
offer. A client that trickles sends ``offer`` with ``candidates_complete: false`` and then its
candidates; the server keeps them in a ``PendingOffer`` and adds them to the SDP (as
``a=candidate`` lines of the right media section) once the empty end-of-candidates arrives.
mDNS (``.local``) candidates are dropped: the server cannot resolve them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from datetime import datetime

from vvserver.settings import Settings
from vvserver.signaling.protocol import IceServerOut, ProtocolError

logger = logging.getLogger(__name__)

MAX_TRICKLED_CANDIDATES = 64


def turn_rest_credentials(secret: str, subject: str, expires_at: int) -> tuple[str, str]:
    """TURN REST API credentials (coturn ``use-auth-secret``, draft-uberti-behave-turn-rest).

    ``username = "<expiry unix time>:<subject>"``, ``credential = base64(HMAC-SHA1(secret,
    username))``. The TURN server recomputes the HMAC with the same secret and refuses the
    username once its expiry has passed, so nothing is stored and nothing long-lived leaks.
    """
    username = f"{expires_at}:{subject}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def client_ice_servers(settings: Settings, subject: str, now: datetime) -> list[IceServerOut]:
    """The ICE servers for one client: ``settings.ice_servers``, then short-lived TURN.

    ``ice_servers`` entries ({"urls", "username", "credential"}) without usable ``urls`` are
    skipped (logged), so one bad entry does not take signaling down; static credentials are
    passed through as configured. With ``turn_urls`` and ``turn_secret`` set, one more entry
    carries TURN REST API credentials for ``subject`` (e.g. ``visit-12``, ``kiosk-3``)
    that expire ``turn_ttl_s`` after ``now``.
    """
    servers: list[IceServerOut] = []
    for entry in settings.ice_servers:
        urls = entry.get("urls")
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            logger.warning("ice server entry without usable urls skipped")
            continue
        username, credential = entry.get("username"), entry.get("credential")
        servers.append(
            IceServerOut(
                urls=[str(u) for u in urls],
                username=str(username) if username is not None else None,
                credential=str(credential) if credential is not None else None,
            )
        )
    if settings.turn_urls and settings.turn_secret:
        expires_at = int(now.timestamp()) + settings.turn_ttl_s
        username, credential = turn_rest_credentials(settings.turn_secret, subject, expires_at)
        servers.append(
            IceServerOut(urls=list(settings.turn_urls), username=username, credential=credential)
        )
    elif settings.turn_urls:
        logger.warning("turn_urls without turn_secret: no TURN server offered to clients")
    return servers


def is_mdns_candidate(candidate: str) -> bool:
    """``candidate:... <address> <port> typ host`` with an address ending in ``.local``."""
    parts = candidate.removeprefix("a=").split()
    return len(parts) > 4 and parts[4].lower().endswith(".local")


def _candidate_line(candidate: str) -> str:
    text = candidate.strip().removeprefix("a=")
    if not text.startswith("candidate:") or "\r" in text or "\n" in text:
        raise ProtocolError("invalid_candidate", "a candidate is one 'candidate:...' line")
    if len(text.split()) < 8:
        raise ProtocolError("invalid_candidate", "the candidate has too few fields")
    return f"a={text}"


@dataclass
class PendingOffer:
    """An offer waiting for its trickled candidates."""

    visit_id: int
    sdp: str
    candidates: list[tuple[str, str | None, int | None]] = field(default_factory=list)
    dropped_mdns: int = 0

    def add(self, candidate: str, sdp_mid: str | None, sdp_mline_index: int | None) -> None:
        if is_mdns_candidate(candidate):
            self.dropped_mdns += 1
            return
        line = _candidate_line(candidate)
        if len(self.candidates) >= MAX_TRICKLED_CANDIDATES:
            raise ProtocolError("too_many_candidates", "too many candidates for one offer")
        self.candidates.append((line, sdp_mid, sdp_mline_index))

    def complete_sdp(self) -> str:
        """The offer with each candidate added to its media section (the first by default)."""
        return merge_candidates(self.sdp, self.candidates)


def merge_candidates(sdp: str, candidates: list[tuple[str, str | None, int | None]]) -> str:
    lines = sdp.replace("\r\n", "\n").rstrip("\n").split("\n")
    section_starts = [i for i, line in enumerate(lines) if line.startswith("m=")]
    if not section_starts:
        return sdp  # the media layer refuses it with a precise code
    mids: dict[str, int] = {}
    for number, start in enumerate(section_starts):
        end = section_starts[number + 1] if number + 1 < len(section_starts) else len(lines)
        for line in lines[start:end]:
            if line.startswith("a=mid:"):
                mids[line.removeprefix("a=mid:").strip()] = number
    extra: dict[int, list[str]] = {}
    for line, sdp_mid, mline_index in candidates:
        if sdp_mid is not None and sdp_mid in mids:
            section = mids[sdp_mid]
        elif mline_index is not None and mline_index < len(section_starts):
            section = mline_index
        else:
            section = 0
        extra.setdefault(section, []).append(line)
    last_line_of = {
        (section_starts[n + 1] if n + 1 < len(section_starts) else len(lines)) - 1: n
        for n in range(len(section_starts))
    }
    out: list[str] = []
    for index, line in enumerate(lines):
        out.append(line)
        if index in last_line_of:
            out.extend(extra.get(last_line_of[index], []))
    return "\r\n".join(out) + "\r\n"
