"""`ImageMessage`: a message that carries an image (its bytes or a URL) with its MIME type.

The bytes are kept as base64 text (`data_base64`), so the message is frozen, hashed and persisted like every other
message: the same image is the same `hash_key`, and a run store keeps it once. LLM agents send it as an image part
(OpenAI) or an image block (Anthropic); text-only consumers see its `content` (a caption), or a short description.
Nothing here imports an imaging library: a matplotlib figure is read through its own `savefig`.
"""

from __future__ import annotations

import base64
import io
import mimetypes
from pathlib import Path
from typing import Any

from miniagents_nb.errors import InvalidArgumentsError
from miniagents_nb.messages.message import Message

__all__ = ["ImageMessage"]


class ImageMessage(Message):
    """An image: `mime_type` (e.g. "image/png") and either `data_base64` (the bytes, base64) or `url`; `content` is
    an optional caption (sent as text beside the image). Build one with `from_bytes`, `from_file`, `from_url` or
    `from_figure`."""

    content: str | None = None
    mime_type: str | None = None
    data_base64: str | None = None
    url: str | None = None

    def __init__(self, **fields: Any) -> None:
        if (fields.get("data_base64") is None) == (fields.get("url") is None):
            raise InvalidArgumentsError(
                "An ImageMessage has either the image's bytes (data_base64) or its url, not both and not neither: "
                "build it with ImageMessage.from_bytes / from_file / from_url / from_figure."
            )
        if fields.get("data_base64") is not None and not fields.get("mime_type"):
            raise InvalidArgumentsError("An ImageMessage with bytes needs its mime_type (e.g. 'image/png').")
        super().__init__(**fields)

    @classmethod
    def from_bytes(cls, data: bytes, mime_type: str, *, content: str | None = None, **metadata: Any) -> ImageMessage:
        """An image from its bytes."""
        return cls(content=content, mime_type=mime_type, data_base64=base64.b64encode(data).decode("ascii"), **metadata)

    @classmethod
    def from_file(
        cls, path: str | Path, mime_type: str | None = None, *, content: str | None = None, **metadata: Any
    ) -> ImageMessage:
        """An image read from a file; the MIME type comes from the file's extension unless given."""
        path = Path(path)
        mime_type = mime_type or mimetypes.guess_type(path.name)[0]
        if not mime_type or not mime_type.startswith("image/"):
            raise InvalidArgumentsError(
                f"Cannot tell the image type of {path.name} from its extension: pass mime_type='image/png' (or the "
                "type it is)."
            )
        return cls.from_bytes(path.read_bytes(), mime_type, content=content, **metadata)

    @classmethod
    def from_url(
        cls, url: str, mime_type: str | None = None, *, content: str | None = None, **metadata: Any
    ) -> ImageMessage:
        """An image the provider fetches itself (http(s) or a `data:` URL)."""
        return cls(content=content, mime_type=mime_type or mimetypes.guess_type(url)[0], url=url, **metadata)

    @classmethod
    def from_figure(
        cls, figure: Any, *, image_format: str = "png", content: str | None = None, **metadata: Any
    ) -> ImageMessage:
        """A matplotlib figure (anything with `savefig(file, format=...)`), rendered now."""
        buffer = io.BytesIO()
        figure.savefig(buffer, format=image_format, bbox_inches="tight")
        mime_type = mimetypes.guess_type(f"figure.{image_format}")[0] or f"image/{image_format}"
        return cls.from_bytes(buffer.getvalue(), mime_type, content=content, **metadata)

    @property
    def data(self) -> bytes | None:
        """The image's bytes (None for an image given by URL)."""
        return None if self.data_base64 is None else base64.b64decode(self.data_base64)

    @property
    def data_url(self) -> str:
        """The image as a URL: its `url`, or a `data:` URL of its bytes."""
        if self.url is not None:
            return self.url
        return f"data:{self.mime_type};base64,{self.data_base64}"

    def _as_string(self) -> str:
        if self.content:
            return self.content
        if self.data_base64 is None:
            return f"[image {self.mime_type or ''}, {self.url}]".replace(" ,", ",")
        size = len(self.data_base64) * 3 // 4
        return f"[image {self.mime_type}, {f'{size // 1024} KB' if size >= 1024 else f'{size} bytes'}]"
