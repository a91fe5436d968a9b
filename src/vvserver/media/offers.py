"""Checks on a participant's SDP offer before aiortc sees it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from vvserver.media.frames import MediaKind

MAX_OFFER_BYTES = 64 * 1024
MAX_MEDIA_SECTIONS = 8
_MDNS_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ \S+\.local \d+ ", re.IGNORECASE)
# DTLS certificate fingerprints the server trusts (RFC 8122, RFC 8827 5.5): SHA-256 or stronger.
STRONG_FINGERPRINT_HASHES = frozenset({"sha-256", "sha-384", "sha-512"})


class OfferRejected(ValueError):
    """The offer cannot be answered; `code` is a stable snake_case reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class MediaSection:
    kind: MediaKind
    direction: str  # sendrecv, sendonly, recvonly or inactive
    codecs: tuple[str, ...]  # lower-case encoding names from a=rtpmap


@dataclass(frozen=True, slots=True)
class CheckedOffer:
    sdp: str  # normalised (CRLF) with mDNS candidates removed
    media: tuple[MediaSection, ...]


def _sections(lines: list[str]) -> tuple[list[str], list[list[str]]]:
    session: list[str] = []
    media: list[list[str]] = []
    for line in lines:
        if line.startswith("m="):
            media.append([line])
        elif media:
            media[-1].append(line)
        else:
            session.append(line)
    return session, media


def _fingerprint_hashes(lines: list[str]) -> set[str]:
    return {
        line.removeprefix("a=fingerprint:").split(" ", 1)[0].lower()
        for line in lines
        if line.startswith("a=fingerprint:")
    }


def answer_direction(*, plays: bool, publishes: bool) -> str:
    """The answer's direction for a media section: what the relay sends and what it receives."""
    return {
        (True, True): "sendrecv",
        (True, False): "sendonly",
        (False, True): "recvonly",
        (False, False): "inactive",
    }[(plays, publishes)]


def check_offer(offer_sdp: str, *, required_codecs: dict[MediaKind, str]) -> CheckedOffer:
    """Validate an offer; raise OfferRejected with a clear reason when it cannot be answered.

    mDNS (`.local`) host candidates are dropped: resolving them needs multicast on the
    server's LAN. At least one other candidate (host, srflx or relay) must remain.
    """
    if len(offer_sdp.encode("utf-8", "replace")) > MAX_OFFER_BYTES:
        raise OfferRejected("offer_too_large", "the SDP offer is larger than 64 KiB")
    if "\x00" in offer_sdp:
        raise OfferRejected("offer_malformed", "the SDP offer contains NUL characters")
    lines = [line.strip() for line in offer_sdp.replace("\r\n", "\n").split("\n")]
    lines = [line for line in lines if line]
    if not lines or lines[0] != "v=0":
        raise OfferRejected("offer_malformed", "the SDP offer does not start with v=0")
    session, media_blocks = _sections(lines)
    if not media_blocks:
        raise OfferRejected("offer_no_media", "the SDP offer has no media section")
    if len(media_blocks) > MAX_MEDIA_SECTIONS:
        raise OfferRejected("offer_too_many_media", "the SDP offer has too many media sections")
    session_hashes = _fingerprint_hashes(session)
    sections: list[MediaSection] = []
    for block in media_blocks:
        fields = block[0][2:].split()
        kind = fields[0] if fields else ""
        if kind not in ("audio", "video"):
            raise OfferRejected("offer_unsupported_media", f"media of type {kind!r} is refused")
        # A media section's own fingerprints replace the session-level ones (RFC 8122 5).
        hashes = _fingerprint_hashes(block) or session_hashes
        if not hashes:
            raise OfferRejected("offer_no_fingerprint", "the SDP offer has no DTLS fingerprint")
        if not hashes & STRONG_FINGERPRINT_HASHES:
            raise OfferRejected(
                "offer_weak_fingerprint",
                "the DTLS fingerprint must use SHA-256 or stronger (not MD5 or SHA-1)",
            )
        codecs = tuple(
            line.split(" ", 1)[1].split("/", 1)[0].lower()
            for line in block
            if line.startswith("a=rtpmap:") and " " in line
        )
        media_kind: MediaKind = "audio" if kind == "audio" else "video"
        if required_codecs[media_kind] not in codecs:
            raise OfferRejected(
                "offer_unsupported_codec",
                f"the {kind} section does not offer {required_codecs[media_kind]}",
            )
        direction = next(
            (
                line[2:]
                for line in block
                if line in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive")
            ),
            "sendrecv",
        )
        sections.append(MediaSection(kind=media_kind, direction=direction, codecs=codecs))
    bundles = [line.split()[1:] for line in session if line.startswith("a=group:BUNDLE")]
    mids = [next((x[6:] for x in block if x.startswith("a=mid:")), None) for block in media_blocks]
    if len(media_blocks) > 1 and not any(set(mids) <= set(group) for group in bundles):
        raise OfferRejected("offer_not_bundled", "the SDP offer must BUNDLE all its media")
    kept = [line for line in lines if not _MDNS_CANDIDATE.match(line)]
    if not any(line.startswith("a=candidate:") for line in kept):
        # aiortc does not trickle: with no candidate to pair at connect time, ICE fails at
        # once, before the client's checks could reveal a peer-reflexive address.
        raise OfferRejected(
            "offer_no_usable_candidates",
            "the offer has no ICE candidate the server can use (mDNS .local ones are not"
            " resolved): send it after ICE gathering completes, with a STUN server configured",
        )
    return CheckedOffer(sdp="\r\n".join(kept) + "\r\n", media=tuple(sections))
