"""ID photos: what a visitor uploads is decoded and stored as pixels only, and staff download it
as a file that can never run as a page (ASVS 5.2.2, 5.2.6, 3.2.1)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from aiohttp import ClientResponse
from PIL import ExifTags, Image

from tests.factories import ApiUser, World
from tests.security.conftest import Client
from vvserver.domain.services import Services

EXIF_ORIENTATION = 0x0112
ROTATE_90_CLOCKWISE = 6  # how a phone held upright writes a landscape sensor's picture


def photo(size: tuple[int, int] = (64, 32)) -> Image.Image:
    """Blue on the left half, red on the right: orientation can be read back from pixels."""
    image = Image.new("RGB", size, (220, 30, 30))
    image.paste((30, 30, 220), (0, 0, size[0] // 2, size[1]))
    return image


def phone_jpeg() -> bytes:
    """A JPEG as a phone writes it: EXIF with orientation, camera and GPS position, a comment."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATE_90_CLOCKWISE
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Model] = "Phone 12"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (40.0, 42.0, 46.0),
        ExifTags.GPS.GPSLongitudeRef: "W",
        ExifTags.GPS.GPSLongitude: (74.0, 0.0, 21.0),
    }
    out = io.BytesIO()
    photo().save(out, format="JPEG", exif=exif, comment=b"home address: 12 Elm St", quality=95)
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def plain_png(image: Image.Image | None = None) -> bytes:
    out = io.BytesIO()
    (image or photo()).save(out, format="PNG")
    return out.getvalue()


def png_with_text_chunk() -> bytes:
    png = plain_png()
    text = png_chunk(b"tEXt", b"Comment\x00<script>alert(document.cookie)</script>")
    return png[:33] + text + png[33:]  # right after IHDR (8 + 25 bytes)


def pixel_flood_png(width: int, height: int, rows: int) -> bytes:
    """A grey PNG that claims width x height pixels; ``rows`` of them are actually there."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * ((width + 1) * rows), 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", pixels)
        + png_chunk(b"IEND", b"")
    )


def noise_png() -> bytes:
    return plain_png(Image.effect_noise((256, 256), 64).convert("RGB"))


async def upload(user: ApiUser, data: bytes, content_type: str) -> ClientResponse:
    response: ClientResponse = await user.put(
        "/api/me/id-photo", data=data, headers={"Content-Type": content_type}
    )
    return response


async def staff_download(client: Client, world: World) -> ClientResponse:
    admin = await ApiUser.sign_in(client, world.emails["admin_a"])
    response: ClientResponse = await admin.get(
        f"/api/visitors/{world.accounts['visitor2']}/id-photo"
    )
    assert response.status == 200, await response.text()
    return response


def stored_photos(services: Services) -> list[Path]:
    return sorted((services.settings.data_dir / "id-photos").iterdir())


async def test_a_phone_photo_is_stored_upright_without_its_exif_gps_or_comment(
    client: Client, world: World, services: Services
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor2"])
    sent = phone_jpeg()
    assert Image.open(io.BytesIO(sent)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert b"home address" in sent
    response = await upload(visitor, sent, "image/jpeg")
    assert response.status == 200, await response.text()

    [stored] = stored_photos(services)
    kept = stored.read_bytes()
    for secret in (b"Exif", b"PhoneMaker", b"Phone 12", b"home address"):
        assert secret not in kept
    received = await (await staff_download(client, world)).read()
    assert received == kept
    image = Image.open(io.BytesIO(received))
    assert image.format == "JPEG"
    assert not image.getexif()
    assert not image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert "comment" not in image.info
    assert "exif" not in image.info
    # Turned upright: the landscape 64x32 picture is a 32x64 portrait, its left half on top.
    assert image.size == (32, 64)
    top = image.getpixel((16, 8))
    bottom = image.getpixel((16, 56))
    assert isinstance(top, tuple)
    assert isinstance(bottom, tuple)
    assert top[2] > 150 > top[0]  # blue
    assert bottom[0] > 150 > bottom[2]  # red


async def test_a_png_keeps_its_pixels_and_loses_text_chunks_and_appended_html(
    client: Client, world: World, services: Services
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor2"])
    html = b"<html><body><script>alert(document.cookie)</script></body></html>"
    for sent in (png_with_text_chunk(), plain_png() + html):
        response = await upload(visitor, sent, "image/png")
        assert response.status == 200, await response.text()
        [stored] = stored_photos(services)
        kept = stored.read_bytes()
        assert b"<script" not in kept
        assert b"tEXt" not in kept
        image = Image.open(io.BytesIO(kept))
        image.load()
        assert image.format == "PNG"
        assert image.text == {}  # type: ignore[attr-defined]
        assert image.convert("RGB").tobytes() == photo().tobytes()
        assert kept.endswith(png_chunk(b"IEND", b""))


async def test_photos_are_downloaded_as_files_that_cannot_run(client: Client, world: World) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor2"])
    assert (await upload(visitor, plain_png(), "image/png")).status == 200
    response = await staff_download(client, world)
    assert response.content_type == "image/png"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert f"id-photo-{world.accounts['visitor2']}.png" in disposition
    csp = [part.strip() for part in response.headers["Content-Security-Policy"].split(";")]
    assert "sandbox" in csp
    assert "default-src 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_what_does_not_decode_or_floods_pixels_is_refused_and_not_kept(
    client: Client, world: World, services: Services
) -> None:
    visitor = await ApiUser.sign_in(client, world.emails["visitor2"])
    noise = noise_png()
    jpeg = phone_jpeg()
    zeros = b"\xff\xd8\xff\xe0" + bytes(64)  # JPEG magic, then nothing
    refused = [
        ("a truncated PNG", noise[: len(noise) // 2], "image/png", "image_unreadable"),
        ("a truncated JPEG", jpeg[: len(jpeg) * 2 // 3], "image/jpeg", "image_unreadable"),
        ("JPEG magic, then zeros", zeros, "image/jpeg", "image_unreadable"),
        ("60000x60000 pixels", pixel_flood_png(60_000, 60_000, 4), "image/png", "image_too_large"),
        ("6500x6500, all there", pixel_flood_png(6500, 6500, 6500), "image/png", "image_too_large"),
    ]
    for what, data, content_type, code in refused:
        assert len(data) < services.settings.max_upload_bytes, what
        response = await upload(visitor, data, content_type)
        assert response.status == 422, (what, await response.text())
        error = (await response.json())["error"]
        assert error["code"] == code, what
        assert stored_photos(services) == [], what
    me = await (await visitor.get("/api/me")).json()
    assert me["has_id_photo"] is False
