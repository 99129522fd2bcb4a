"""Turning grabbed pixels into the bytes of a PNG or JPEG, downscaled first when asked.

Blocking (Pillow's encoders do the work in C without the GIL): call it from a worker thread.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

from openpista.tools.screen.arguments import ImageFormat

if TYPE_CHECKING:
    from PIL.Image import Image

PNG_COMPRESS_LEVEL = 1
"""zlib level 1: a 1920x1080 desktop encodes in about half the time of Pillow's default 6
for a file about as large (levels 1-3 use zlib's fast strategy; measured in
docs/performance.md, "Screen tools")."""

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
    buffer = io.BytesIO()
    if image_format == "png":
        picture.save(buffer, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    else:
        picture.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return EncodedPicture(
        buffer.getvalue(), image_format, size[0], size[1], image.width, image.height
    )
