"""Pictures and files of conversations, kept as files under OPENPISTA_HOME/media/.

The database holds only references (a path relative to the media folder), never the bytes:
a conversation with screenshots stays small, and the files can be opened directly. Files are
named by the SHA-256 of their content, so the same picture sent twice is stored once.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import os
from pathlib import Path

from openpista.core.errors import OpenpistaError
from openpista.core.models import Attachment, FilePart, Image, ImagePart, Part

MEDIA_DIR = "media"

_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
    "application/json": ".json",
}


def describe_size(size: int) -> str:
    """A file size as people read it, in binary units: "0.4 KB", "39 KB", "1.2 MB"."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    kb = size / 1024
    return f"{kb:.1f} KB" if kb < 10 else f"{kb:.0f} KB"


class MediaStore:
    """Writes media files (folder 0700, files 0600: they are the owner's private data)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def in_home(cls, home: Path) -> MediaStore:
        return cls(home / MEDIA_DIR)

    def path_of(self, relative: str) -> Path:
        """The file behind a part's `path`; refuses paths that leave the media folder."""
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise OpenpistaError(f"media path {relative!r} is outside {self.root}")
        return path

    def read(self, relative: str) -> bytes:
        """The bytes of a stored file (`ChatRequest.read_media`); OSError when it is gone."""
        return self.path_of(relative).read_bytes()

    def save_bytes(self, data: bytes, mime_type: str, name: str = "") -> str:
        """Store `data`; returns its path relative to the media folder."""
        digest = hashlib.sha256(data).hexdigest()
        relative = f"{digest[:2]}/{digest}{_extension(mime_type, name)}"
        target = self.root / relative
        if not target.exists():
            try:
                self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
                target.parent.mkdir(mode=0o700, exist_ok=True)
                partial = target.with_name(f".{target.name}.{os.getpid()}.part")
                fd = os.open(partial, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                os.replace(partial, target)  # atomic: a reader never sees half a file
            except OSError as exc:
                raise OpenpistaError(
                    f"cannot save a media file under {self.root}: {exc.strerror or exc}; "
                    "check that OPENPISTA_HOME is writable and the disk is not full"
                ) from exc
        return relative

    def save_image(self, image: Image, prefix: str = "picture") -> ImagePart:
        """A tool's picture as a stored image part, named `prefix` and the first 8 hex digits
        of its SHA-256 (`screen.capture-1f3a9c2b`): pictures of one conversation get distinct
        names, and the same picture the same name."""
        data = base64.b64decode(image.data_b64)
        relative = self.save_bytes(data, image.mime_type)
        name = f"{prefix}-{Path(relative).name[:8]}"
        return ImagePart(relative, image.mime_type, name=name, size=len(data))

    def save_attachment(self, attachment: Attachment) -> Part:
        """A channel's attachment as a stored image or file part."""
        if attachment.data is not None:
            data = attachment.data
        elif attachment.path is not None:
            try:
                data = Path(attachment.path).read_bytes()
            except OSError as exc:
                raise OpenpistaError(
                    f"cannot read the attachment {attachment.path}: {exc.strerror or exc}"
                ) from exc
        else:
            raise OpenpistaError(
                f"the attachment {attachment.name or '(unnamed)'} has neither data nor a path"
            )
        relative = self.save_bytes(data, attachment.mime_type, attachment.name)
        cls = ImagePart if attachment.kind == "image" else FilePart
        return cls(relative, attachment.mime_type, name=attachment.name, size=len(data))


def _extension(mime_type: str, name: str) -> str:
    suffix = Path(name).suffix.lower() if name else ""
    if suffix and len(suffix) <= 8 and suffix[1:].isalnum():
        return suffix
    return _EXTENSIONS.get(mime_type) or mimetypes.guess_extension(mime_type) or ".bin"
