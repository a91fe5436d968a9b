"""Offers the relay cannot answer are refused with a clear, stable reason."""

from __future__ import annotations

import re

import pytest
from aiortc import RTCPeerConnection

from vvserver.media.aiortc_hooks import rtc_configuration
from vvserver.media.offers import OfferRejected, check_offer
from vvserver.media.participant import FORWARDED_CODECS


async def real_offer(*kinds: str) -> str:
    pc = RTCPeerConnection(rtc_configuration([]))
    try:
        for kind in kinds:
            pc.addTransceiver(kind, direction="sendrecv")
        await pc.setLocalDescription(await pc.createOffer())
        assert pc.localDescription is not None
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


def rejection(sdp: str) -> str:
    with pytest.raises(OfferRejected) as caught:
        check_offer(sdp, required_codecs=FORWARDED_CODECS)
    return caught.value.code


async def test_a_browser_like_offer_is_accepted_and_its_sections_described() -> None:
    offer = check_offer(await real_offer("audio", "video"), required_codecs=FORWARDED_CODECS)
    assert [(m.kind, m.direction) for m in offer.media] == [
        ("audio", "sendrecv"),
        ("video", "sendrecv"),
    ]
    assert "vp8" in offer.media[1].codecs


async def test_malformed_and_hostile_offers_are_refused() -> None:
    sdp = await real_offer("audio", "video")
    assert rejection("") == "offer_malformed"
    assert rejection("hello") == "offer_malformed"
    assert rejection("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n") == "offer_no_media"
    assert rejection(sdp + "a=x:" + "y" * 70_000) == "offer_too_large"
    assert rejection(sdp.replace("v=0", "v=0\x00")) == "offer_malformed"
    assert rejection("v=0\r\n" + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n" * 9) == (
        "offer_too_many_media"
    )


async def test_an_offer_without_a_dtls_fingerprint_is_refused() -> None:
    sdp = await real_offer("audio", "video")
    stripped = "\r\n".join(x for x in sdp.splitlines() if not x.startswith("a=fingerprint:"))
    assert rejection(stripped) == "offer_no_fingerprint"


async def test_offers_without_vp8_or_opus_or_with_data_channels_are_refused() -> None:
    sdp = await real_offer("audio", "video")
    no_vp8 = "\r\n".join(x for x in sdp.splitlines() if "VP8/90000" not in x)
    assert rejection(no_vp8) == "offer_unsupported_codec"
    no_opus = "\r\n".join(x for x in sdp.splitlines() if "opus/48000" not in x)
    assert rejection(no_opus) == "offer_unsupported_codec"
    with_data = sdp + "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    assert rejection(with_data) == "offer_unsupported_media"


async def test_mdns_host_candidates_are_dropped_and_others_kept() -> None:
    sdp = await real_offer("audio", "video")
    mdns = (
        "a=candidate:1 1 udp 2130706431 3f1c2e9a-1b2c-4d5e-8f90-123456789abc.local 50000 typ host"
    )
    plain = "a=candidate:2 1 udp 2130706431 127.0.0.1 50001 typ host"
    offer = check_offer(f"{sdp}{mdns}\r\n{plain}\r\n", required_codecs=FORWARDED_CODECS)
    assert ".local" not in offer.sdp
    assert plain in offer.sdp


async def test_an_offer_that_does_not_bundle_its_media_is_refused() -> None:
    sdp = await real_offer("audio", "video")
    unbundled = "\r\n".join(x for x in sdp.splitlines() if not x.startswith("a=group:BUNDLE"))
    assert rejection(unbundled) == "offer_not_bundled"


async def test_an_offer_with_only_mdns_or_no_candidates_is_refused_with_a_hint() -> None:
    sdp = await real_offer("audio", "video")
    masked = re.sub(r"(a=candidate:\S+ \d+ \S+ \d+ )127\.0\.0\.1", r"\g<1>3f1c2e9a.local", sdp)
    assert rejection(masked) == "offer_no_usable_candidates"
    none = "\r\n".join(x for x in sdp.splitlines() if not x.startswith("a=candidate:"))
    assert rejection(none) == "offer_no_usable_candidates"
