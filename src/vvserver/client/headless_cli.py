"""``vvserver client join``: the headless participant (``headless``) on the command line.

    vvserver client join --server http://127.0.0.1:8080 --role kiosk --token k3.SECRET \\
        [--visit-id 12] [--pin 2468] [--seconds 600] [--ice-host 127.0.0.1] [--frames-every 1]

Prints each message received as one JSON line, with ``--frames-every S`` a line with the media
frames received so far (``{"frames": {"video": n, "audio": m}, "at": unix time}``) every S
seconds, and a summary line at the end. Exit code 1 after a refusal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from vvserver.client import headless
from vvserver.client.file_clip import UnusableMediaFile, clip_from_file
from vvserver.client.headless import HeadlessParticipant, ParticipantReport

logger = logging.getLogger(__name__)


async def _run_printing_frames(
    participant: HeadlessParticipant, seconds: float | None, every: float | None
) -> ParticipantReport:
    """Run, printing the frames received so far every `every` seconds (wall-clock `at`)."""
    if every is None:
        return await participant.run(seconds)

    async def print_frames() -> None:
        while True:
            await asyncio.sleep(every)
            video, audio = participant.frames_received()
            line = {"frames": {"video": video, "audio": audio}, "at": time.time()}
            print(json.dumps(line), flush=True)

    printer = asyncio.create_task(print_frames())
    try:
        return await participant.run(seconds)
    finally:
        printer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await printer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vvserver client join", description=headless.__doc__)
    parser.add_argument("--server", required=True, help="base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--role", choices=["visitor", "kiosk"], required=True)
    parser.add_argument("--token", required=True, help="join-link token or kiosk device token")
    parser.add_argument("--visit-id", type=int, help="kiosk: join this visit at once")
    parser.add_argument("--pin", help="kiosk: the person's PIN, where the facility asks for it")
    parser.add_argument("--seconds", type=float, help="stop after this long")
    parser.add_argument("--ice-host", action="append", help="ICE host address (repeatable)")
    parser.add_argument(
        "--frames-every", type=float, help="print the media frames received every N seconds"
    )
    parser.add_argument(
        "--media",
        type=Path,
        help="a WebM file (VP8 + Opus) to send, looped, without re-encoding; "
        "default: a generated test pattern",
    )
    args = parser.parse_args(argv)
    clip = None
    if args.media is not None:
        try:
            clip = clip_from_file(args.media)
        except (UnusableMediaFile, OSError) as exc:
            parser.error(str(exc))
    if args.ice_host:
        from vvserver.media.aiortc_hooks import set_ice_host_addresses

        set_ice_host_addresses(args.ice_host)

    def show(message: dict[str, Any]) -> None:
        print(json.dumps(message), flush=True)

    participant = HeadlessParticipant(
        args.server,
        role=args.role,
        token=args.token,
        visit_id=args.visit_id,
        on_message=show,
        pin=args.pin,
        clip=clip,
    )
    report = asyncio.run(_run_printing_frames(participant, args.seconds, args.frames_every))
    print(json.dumps({"summary": report.__dict__}), flush=True)
    return 1 if report.refused else 0


if __name__ == "__main__":
    sys.exit(main())
