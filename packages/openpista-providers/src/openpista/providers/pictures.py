"""What a model is sent of the pictures and files in a conversation.

Pictures (a screenshot a tool took, a photo the user sent) live as files under
OPENPISTA_HOME/media/; a message holds only references (`ImagePart`). A model known to accept
images gets each picture as an image part of at most MAX_INLINE_PICTURE_BYTES of base64;
every other model, and any picture too large or gone, gets a one-line placeholder saying
what the picture was and that the user has it. Custom and unknown models get placeholders:
a local server that cannot read images would refuse the whole request.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from openpista.core.media import describe_size
from openpista.core.models import FilePart, ImagePart, Message, TextPart

MAX_INLINE_PICTURE_BYTES = 1_000_000
"""The most a picture may take on the wire, as base64 (about 730 KB of file)."""

_INLINE_MIME_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
"""What every image-capable API here takes."""

# Models known to accept images, by provider; a pattern matches from the start of the
# model name. Kept to families that take images in every size they come in.
_VISION_MODELS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "openai": (r"gpt-4o", r"gpt-4\.1", r"gpt-5", r"o3", r"o4", r"chatgpt-4o"),
        "anthropic": (r"claude-3", r"claude-(opus|sonnet|haiku)-4"),
        "copilot": (r"gpt-4o", r"gpt-4\.1", r"gpt-5", r"claude-(3|sonnet-4|opus-4)", r"gemini"),
        "openrouter": (
            r"openai/(gpt-4o|gpt-4\.1|gpt-5|o3|o4)",
            r"anthropic/claude-(3|sonnet-4|opus-4|haiku-4)",
            r"google/gemini",
        ),
        "gemini": (r"gemini",),
        "vercel": (r"openai/(gpt-4o|gpt-4\.1|gpt-5)", r"anthropic/claude", r"google/gemini"),
    }
)

Reader = Callable[[str], bytes]
"""Reads a media file by its path relative to the media folder (`ChatRequest.read_media`)."""


def accepts_images(provider: str, model: str) -> bool:
    """Whether `model` on `provider` (a preset name) is known to take image parts."""
    patterns = _VISION_MODELS.get(provider, ())
    return any(re.match(pattern, model) for pattern in patterns)


@dataclass(frozen=True, slots=True)
class InlinePicture:
    """A picture sent to the model as base64 data."""

    mime_type: str
    data_b64: str
    name: str

    @property
    def data_url(self) -> str:
        return f"data:{self.mime_type};base64,{self.data_b64}"


@dataclass(slots=True)
class MessageForModel:
    """A message's text as the model reads it, and the pictures it is sent with it."""

    text: str
    pictures: list[InlinePicture] = field(default_factory=lambda: [])


@dataclass(frozen=True, slots=True)
class PictureSender:
    """Turns a message's parts into what one request sends: inline pictures when `inline`
    (the model takes images) and `read` can load them; placeholders otherwise."""

    inline: bool = False
    read: Reader | None = None

    @classmethod
    def for_model(cls, provider: str, model: str, read: Reader | None) -> PictureSender:
        return cls(inline=accepts_images(provider, model) and read is not None, read=read)

    def message(self, message: Message) -> MessageForModel:
        """`message`'s content with its text parts, and a line per picture or file not sent
        inline; the pictures that are."""
        pieces = [message.content] if message.content else []
        pictures: list[InlinePicture] = []
        for part in message.parts:
            if isinstance(part, TextPart):
                if part.text:
                    pieces.append(part.text)
            elif isinstance(part, ImagePart):
                picture, note = self._picture(part)
                if picture is not None:
                    pictures.append(picture)
                if note:
                    pieces.append(note)
            elif isinstance(part, FilePart):
                pieces.append(f"[file {_label(part)}: {_described(part)}]")
        return MessageForModel("\n".join(pieces), pictures)

    def messages(
        self, messages: Sequence[Message]
    ) -> Iterator[tuple[Message, MessageForModel] | list[InlinePicture]]:
        """Each message with what it sends, in order; after a run of tool results whose
        pictures go inline, those pictures as one list. Chat completions and the Responses
        API take images only from the user, so they send that list as a user message."""
        held: list[InlinePicture] = []
        for message in messages:
            if held and message.role != "tool":
                yield held
                held = []
            sent = self.message(message)
            if message.role == "tool":
                held.extend(sent.pictures)
            yield message, sent
        if held:
            yield held

    def _picture(self, part: ImagePart) -> tuple[InlinePicture | None, str]:
        label = _label(part)
        kept = f"[picture {label}: {_described(part)}; the user has it"
        if not self.inline or self.read is None:
            return None, f"{kept}, it is not shown to you]"
        if part.mime_type not in _INLINE_MIME_TYPES:
            return None, f"{kept}; this picture format cannot be shown to you]"
        if _base64_length(part.size) > MAX_INLINE_PICTURE_BYTES:
            return None, (
                f"{kept}; it is too large to show you (the limit is about "
                f"{describe_size(MAX_INLINE_PICTURE_BYTES * 3 // 4)}): a smaller one (a lower "
                "max_width, or jpeg) can be shown]"
            )
        try:
            data = self.read(part.path)
        except Exception:
            return None, f"[picture {label}: its file is gone from the media folder]"
        encoded = base64.b64encode(data).decode("ascii")
        if len(encoded) > MAX_INLINE_PICTURE_BYTES:  # the recorded size was wrong
            return None, f"{kept}; it is too large to show you]"
        return InlinePicture(part.mime_type, encoded, label), f"[picture {label}: attached]"


def tool_pictures_note(pictures: Sequence[InlinePicture]) -> str:
    """The text before the pictures of tool results sent as a user message."""
    return f"(the pictures from the tool results above: {', '.join(p.name for p in pictures)})"


def _label(part: ImagePart | FilePart) -> str:
    return part.name or part.path.rsplit("/", 1)[-1]


def _described(part: ImagePart | FilePart) -> str:
    """ "PNG, 183 KB": the kind of file and its size, where known."""
    kind = part.mime_type
    if isinstance(part, ImagePart):
        kind = kind.removeprefix("image/").upper()
    return f"{kind}, {describe_size(part.size)}" if part.size > 0 else kind


def _base64_length(size: int) -> int:
    return (size + 2) // 3 * 4
