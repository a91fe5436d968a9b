"""ID photos are decoded and encoded again before they are stored (ASVS 5.2.2, 5.2.6).

What is stored is only the pixels: whatever else the upload carried (EXIF with the phone's GPS
position, PNG text chunks, bytes after the image's end, an HTML page glued to a PNG) is gone.
Pixels are bounded before anything is decoded, so a small file that claims 60000x60000 pixels
is refused from its header; a file that does not decode completely is refused too. Phone photos
are turned upright (EXIF orientation) before the metadata goes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vvserver.domain.errors import InvalidInput

if TYPE_CHECKING:
    from PIL import Image

IMAGE_MAGIC: dict[str, bytes] = {
    "image/jpeg": b"\xff\xd8\xff",
    "image/png": b"\x89PNG\r\n\x1a\n",
}
_PILLOW_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}
# 40 megapixels decode to at most 160 MB (RGBA); a phone's main camera takes 12-50 MP photos.
MAX_PIXELS = 40_000_000
# Stored photos fit in this square: an ID card stays readable and the file stays small.
MAX_STORED_EDGE = 4096
JPEG_QUALITY = 90


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    content_type: str
    width: int
    height: int


def sniff_image_type(data: bytes) -> str | None:
    for content_type, magic in IMAGE_MAGIC.items():
        if data.startswith(magic):
            return content_type
    return None


def _refuse(message: str, code: str = "image_unreadable") -> InvalidInput:
    return InvalidInput(message, code=code)


def reencode_image(data: bytes, content_type: str) -> CleanImage:
    """Decode a JPEG or PNG fully and encode its pixels again, with no metadata at all.

    Blocking (CPU): run it in a thread. Raises InvalidInput (``image_too_large``,
    ``image_unreadable``) for what cannot be made into a clean image.
    """
    # Pillow is loaded at the first upload, not at start (2 MB resident a server may not need).
    from PIL import Image, ImageOps, UnidentifiedImageError

    pillow_format = _PILLOW_FORMATS[content_type]
    try:
        # Reads the header only: the size is known before any pixel is decoded.
        with Image.open(io.BytesIO(data), formats=[pillow_format]) as opened:
            width, height = opened.size
            if width * height > MAX_PIXELS:
                raise _refuse(
                    f"the image has {width}x{height} pixels; at most {MAX_PIXELS} are accepted",
                    "image_too_large",
                )
            if pillow_format == "JPEG":
                # Lets the JPEG decoder scale down while it decodes (less memory and CPU).
                opened.draft("RGB", (MAX_STORED_EDGE, MAX_STORED_EDGE))
            opened.load()  # the whole image: truncated or corrupt data raises here
            clean = _pixels_only(ImageOps.exif_transpose(opened), pillow_format)
        out = io.BytesIO()
        if pillow_format == "JPEG":
            clean.save(out, format="JPEG", quality=JPEG_QUALITY)
        else:
            clean.save(out, format="PNG")
    except Image.DecompressionBombError as exc:
        raise _refuse("the image has too many pixels", "image_too_large") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise _refuse(f"the file is not a complete {pillow_format} image") from exc
    return CleanImage(out.getvalue(), content_type, clean.width, clean.height)


def _pixels_only(upright: Image.Image, pillow_format: str) -> Image.Image:
    """The picture in RGB, RGBA (PNG with transparency) or grey, fit to the stored size."""
    from PIL import Image

    has_alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
    mode = "RGBA" if has_alpha and pillow_format == "PNG" else "RGB"
    if upright.mode == "L" and not has_alpha:
        mode = "L"
    pixels = upright.convert(mode)
    pixels.thumbnail((MAX_STORED_EDGE, MAX_STORED_EDGE), Image.Resampling.LANCZOS)
    # A new image holds the pixels only: no EXIF, ICC profile, comments or text chunks.
    clean = Image.new(mode, pixels.size)
    clean.paste(pixels)
    return clean
