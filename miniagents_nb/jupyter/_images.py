"""Which images the views show, and how: an `ImageMessage`'s own bytes as a `data:` URL, nothing else.

A view's static HTML is stored in the notebook and shown by JupyterLab, nbconvert and GitHub, so what goes into an
`<img src>` is decided here, not by the message: only a base64 `data:` URL of a raster type (`SHOWN_IMAGE_TYPES`;
SVG can carry scripts), checked character by character, and at most `MAX_SHOWN_IMAGE_CHARS` long. An image given
by an http(s) URL is never fetched by a view (a saved notebook would call that server each time it is opened): the
view shows its text, `[image image/jpeg, https://...]`, as it does for any image it does not show.
"""

from __future__ import annotations

import re
from typing import Any

from miniagents_nb.messages import ImageMessage

__all__ = ["MAX_SHOWN_IMAGE_CHARS", "SHOWN_IMAGE_TYPES", "image_state", "is_shown_image_source"]

SHOWN_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
"""The MIME types a view shows as an image (`IMAGE_SOURCE` in static/views.js accepts the same)."""

MAX_SHOWN_IMAGE_CHARS = 2_000_000
"""Base64 characters of the largest image a view shows (about 1.5 MB of image): it is stored in the notebook."""

_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_DATA_URL = re.compile(r"data:(image/[a-z0-9.+-]+);base64,(.*)", re.DOTALL)


def is_shown_image_source(source: str) -> bool:
    """Whether `source` is a `data:` URL a view puts into an `<img src>` (the static forms check what they render)."""
    match = _DATA_URL.fullmatch(source)
    return bool(
        match
        and match.group(1) in SHOWN_IMAGE_TYPES
        and len(match.group(2)) <= MAX_SHOWN_IMAGE_CHARS
        and _BASE64.fullmatch(match.group(2))
    )


def image_state(message: Any) -> dict[str, str] | None:
    """`{"src": data URL, "alt": text}` of an image message a view shows; None for anything else."""
    if not isinstance(message, ImageMessage):
        return None
    mime_type, data = (message.mime_type or "").lower(), message.data_base64
    if data is None:
        match = _DATA_URL.fullmatch(message.url or "")
        if match is None:
            return None  # an http(s) URL: never fetched by a view
        mime_type, data = match.group(1), match.group(2)
    source = f"data:{mime_type};base64,{data}"
    if not is_shown_image_source(source):
        return None
    return {"src": source, "alt": str(message)}
