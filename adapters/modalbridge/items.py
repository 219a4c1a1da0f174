"""Explicit modalities: the small public API that tags what an input is.

What is unambiguous needs no tag: a ``str`` is text, a ``PIL.Image.Image`` is an image. Everything that
could be more than one thing (a path, bytes, a numpy array, a URL) is tagged by the caller::

    from modalbridge import Audio, Combined, Image, Video

    items = [
        "a photo of a cat",                      # text, always (never read from disk or fetched)
        pil_image,                               # an image
        Image("photos/cat.jpg"),                 # an image file
        Image(jpeg_bytes),                       # encoded image bytes
        Image.from_base64(b64_string),           # base64 or a data: URI
        Image("https://example.com/cat.jpg"),    # fetched only when the model was built with allow_fetch=True
        Audio("clips/robin.ogg"),                # decoded and resampled to the model's rate
        Audio(waveform, sampling_rate=44_100),   # a waveform needs its rate
        Video("clips/walk.mp4"),                 # decoded by the model's video processor
        Video(frames, fps=4),                    # (T, H, W, 3) uint8 frames
        Combined(text="a cat", image=pil_image), # one item made of several modalities
    ]

:func:`modality_of` tells the modality of an item; :func:`check_item` raises ``TypeError`` for anything
that would need guessing.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, ClassVar, Union

import numpy as np

try:  # Pillow is a dependency of sentence-transformers' image support, but keep text-only installs working.
    from PIL.Image import Image as PILImage
except ImportError:  # pragma: no cover
    PILImage = None  # type: ignore[assignment,misc]

Modality = Union[str, tuple[str, ...]]
"""``"text"``, ``"image"``, ``"audio"``, ``"video"``, or a sorted tuple of those for a :class:`Combined` item."""

MEDIA_MODALITIES = ("image", "audio", "video")


def _describe_source(source: Any) -> str:
    """A short, human-readable name for a source, used in error messages."""
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if text.startswith("data:"):
            return text[: text.find(",") if "," in text else 30] + ",..."
        return text if len(text) <= 200 else text[:200] + "..."
    if isinstance(source, (bytes, bytearray)):
        return f"{len(source)} bytes"
    if isinstance(source, BytesIO):
        return "a BytesIO buffer"
    if isinstance(source, np.ndarray):
        return f"an array of shape {tuple(source.shape)}"
    if PILImage is not None and isinstance(source, PILImage):
        return f"a PIL image of size {source.size}"
    shape = getattr(source, "shape", None)
    if shape is not None:
        return f"a {type(source).__name__} of shape {tuple(shape)}"
    return f"a {type(source).__name__}"


def is_url(source: Any) -> bool:
    """Whether a tagged source names an http(s) URL (which is fetched only when fetching is allowed)."""
    return isinstance(source, str) and source.startswith(("http://", "https://"))


@dataclass(frozen=True)
class MediaItem:
    """Base class of tagged media. ``source`` is whatever the caller has; decoding happens in the core."""

    modality: ClassVar[str] = ""
    source: Any

    def __post_init__(self) -> None:
        if self.source is None:
            raise TypeError(f"{type(self).__name__}(None): a source is required")
        if isinstance(self.source, Path):
            object.__setattr__(self, "source", str(self.source))

    def describe(self) -> str:
        return _describe_source(self.source)

    @classmethod
    def from_base64(cls, data: str | bytes, **kwargs: Any):
        """Tag base64 data, with or without a ``data:<mime>;base64,`` prefix."""
        if isinstance(data, bytes):
            data = data.decode("ascii")
        payload = data.split(",", 1)[1] if data.startswith("data:") else data
        try:
            raw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"{cls.__name__}.from_base64: not valid base64 ({exc})") from None
        return cls(raw, **kwargs)


@dataclass(frozen=True)
class Image(MediaItem):
    """An image: a PIL image, an (H, W, C) / (C, H, W) array or tensor, a file path, encoded bytes or a
    ``BytesIO``, a ``data:image/...;base64,`` URI, or an http(s) URL (fetched only when allowed)."""

    modality: ClassVar[str] = "image"


@dataclass(frozen=True)
class Audio(MediaItem):
    """A sound: a file path, encoded bytes or ``BytesIO``, a URL, or a waveform array with its
    ``sampling_rate``. It is decoded to mono and resampled to the model's rate before encoding."""

    modality: ClassVar[str] = "audio"
    sampling_rate: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        is_waveform = isinstance(self.source, np.ndarray) or hasattr(self.source, "shape")
        if is_waveform and self.sampling_rate is None:
            raise TypeError("Audio(waveform): a waveform needs its sampling_rate, e.g. Audio(array, sampling_rate=16000)")


@dataclass(frozen=True)
class Video(MediaItem):
    """A video: a file path, encoded bytes or ``BytesIO``, a URL, or frames — a (T, H, W, C) uint8 array
    or a list of PIL images — with an optional ``fps`` (frames without one are taken as 24 fps by the
    model's processor, as transformers does)."""

    modality: ClassVar[str] = "video"
    fps: float | None = None


@dataclass(frozen=True)
class Combined:
    """One item made of several modalities, e.g. ``Combined(text="red shoes", image=photo)``, for models
    that take combined inputs (Qwen3-VL and other chat-template models). Each part may be a raw value
    (a ``str`` for text, a PIL image) or a tagged :class:`Image` / :class:`Audio` / :class:`Video`."""

    text: str | None = None
    image: Any = None
    audio: Any = None
    video: Any = None
    parts: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = {}
        for name in ("text", "image", "audio", "video"):
            value = getattr(self, name)
            if value is None:
                continue
            if name == "text":
                if not isinstance(value, str):
                    raise TypeError(f"Combined(text=...): text must be a str, got {type(value).__name__}")
            else:
                value = _as_part(name, value)
            parts[name] = value
        if len(parts) < 2:
            raise TypeError("Combined(...) needs at least two parts, e.g. Combined(text=..., image=...)")
        object.__setattr__(self, "parts", parts)

    @property
    def modality(self) -> tuple[str, ...]:
        return tuple(sorted(self.parts))

    def describe(self) -> str:
        return ", ".join(f"{k}={_describe_part(v)}" for k, v in self.parts.items())


def _describe_part(value: Any) -> str:
    return repr(value[:40]) if isinstance(value, str) else value.describe()


def _as_part(name: str, value: Any) -> MediaItem:
    tag = {"image": Image, "audio": Audio, "video": Video}[name]
    if isinstance(value, tag):
        return value
    if isinstance(value, MediaItem):
        raise TypeError(f"Combined({name}=...): got a {type(value).__name__}, expected {tag.__name__}")
    if name == "image" and PILImage is not None and isinstance(value, PILImage):
        return Image(value)
    raise TypeError(
        f"Combined({name}=...): {_describe_source(value)} is ambiguous; wrap it as {tag.__name__}(...)"
    )


Item = Union[str, "PILImage", MediaItem, Combined]
"""Anything the core accepts as one input."""


def check_item(item: Any, index: int | None = None) -> Item:
    """Return ``item`` if its modality is unambiguous, else raise ``TypeError`` naming it and saying how
    to tag it. A bare PIL image is returned as :class:`Image`."""
    if isinstance(item, (str, MediaItem, Combined)):
        return item
    if PILImage is not None and isinstance(item, PILImage):
        return Image(item)
    where = f"item {index}: " if index is not None else ""
    if item is None:
        raise TypeError(f"{where}None is not an input")
    described = f"the path {os.fspath(item)!r}" if isinstance(item, os.PathLike) else _describe_source(item)
    raise TypeError(
        f"{where}{described} is ambiguous: tag it as modalbridge.Image(...), "
        "Audio(..., sampling_rate=...) or Video(...) (a str is always text)"
    )


def modality_of(item: Any) -> Modality:
    """The modality of an item: ``"text"`` for a str, ``"image"`` for a PIL image, the tag's modality
    otherwise. Raises ``TypeError`` for untagged ambiguous values."""
    item = check_item(item)
    if isinstance(item, str):
        return "text"
    return item.modality


def format_modality(modality: Modality) -> str:
    """``("image", "text")`` -> ``"image+text"``."""
    return "+".join(modality) if isinstance(modality, tuple) else modality


def describe_item(item: Any) -> str:
    """A short description of an item for error messages."""
    if isinstance(item, str):
        return repr(item if len(item) <= 60 else item[:60] + "...")
    if isinstance(item, (MediaItem, Combined)):
        return f"{type(item).__name__}({item.describe()})"
    return _describe_source(item)
