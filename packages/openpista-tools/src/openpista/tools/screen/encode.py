"""Turning grabbed pixels into the bytes of a PNG or JPEG, downscaled first when asked.

PNG goes through mss's writer (rows unfiltered, one zlib stream): screens are mostly flat
colour, which zlib packs well without PNG's per-row filters, and skipping Pillow's adaptive
filter choice halves the time (about 34 ms against 61 ms for a busy 1920x1080 desktop, for a
file 5 % larger). Blocking (zlib and Pillow work in C without the GIL): call it from a worker
thread.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

from openpista.tools.screen.arguments import ImageFormat

if TYPE_CHECKING:
    from PIL.Image import Image

PNG_COMPRESS_LEVEL = 1
"""zlib's fastest level: a busy 1920x1080 desktop encodes in about a third of the time of
level 6 for a file no larger (levels 1-3 use zlib's fast strategy; docs/performance.md,
"Screen tools")."""

JPEG_QUALITY = 85
"""Text stays legible at a third of the PNG size of a busy screen."""

MIME_TYPES: dict[ImageFormat, str] = {"png": "image/png", "jpeg": "image/jpeg"}


@dataclass(frozen=True, slots=True)
class EncodedPicture:
    data: bytes
    image_format: ImageFormat
    width: int
    height: int
    original_width: int
    original_height: int

    @property
    def mime_type(self) -> str:
        return MIME_TYPES[self.image_format]

    @property
    def downscaled(self) -> bool:
        return (self.width, self.height) != (self.original_width, self.original_height)


def downscaled_size(width: int, height: int, max_width: int | None) -> tuple[int, int]:
    """`width`x`height` narrowed to `max_width` keeping the aspect ratio; never enlarged."""
    if max_width is None or width <= max_width:
        return width, height
    return max_width, max(1, round(height * max_width / width))


def encode(image: Image, image_format: ImageFormat, max_width: int | None) -> EncodedPicture:
    from PIL.Image import Resampling

    size = downscaled_size(image.width, image.height, max_width)
    # Bicubic after a box reduction (what Image.thumbnail does): sharp text, and a 4K screen
    # is first halved cheaply instead of filtered at full size.
    picture = image if size == image.size else image.resize(size, Resampling.BICUBIC, None, 2.0)
    if picture.mode != "RGB":  # grabs are RGB already; mss's PNG writer takes nothing else
        picture = picture.convert("RGB")
    if image_format == "png":
        from mss.tools import to_png

        data = to_png(picture.tobytes(), picture.size, level=PNG_COMPRESS_LEVEL)
        assert data is not None  # returned, as no output file was named
    else:
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=JPEG_QUALITY)
        data = buffer.getvalue()
    return EncodedPicture(data, image_format, size[0], size[1], image.width, image.height)
