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
        PdfPage("report.pdf", page=3),           # one PDF page, rendered to an image for the model
        Image("report.pdf#page=3"),              # the same page, by the PDF open-parameter convention
        Combined(text="a cat", image=pil_image), # one item made of several modalities
    ]

:func:`modality_of` tells the modality of an item; :func:`check_item` raises ``TypeError`` for anything
that would need guessing.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, ClassVar, Sequence, Union

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
    ``BytesIO``, a ``data:image/...;base64,`` URI, an http(s) URL (fetched only when allowed), or one page
    of a PDF file as ``"file.pdf#page=N"`` (1-based; see :class:`PdfPage`)."""

    modality: ClassVar[str] = "image"


PAGE_URI = re.compile(r"^(?P<path>.+\.pdf)#page=(?P<page>[0-9]+)$", re.IGNORECASE)
"""``file.pdf#page=N``: one page of a PDF (1-based), the PDF open-parameter convention."""


def parse_page_uri(uri: Any) -> tuple[str, int] | None:
    """``("file.pdf", 3)`` for ``"file.pdf#page=3"``, else ``None`` (any other string, or not a str)."""
    if not isinstance(uri, str):
        return None
    match = PAGE_URI.match(uri)
    return (match["path"], int(match["page"])) if match else None


def page_uri(path: str | os.PathLike, page: int) -> str:
    """``"file.pdf#page=3"``: the address of one page (1-based)."""
    return f"{os.fspath(path)}#page={int(page)}"


@dataclass(frozen=True)
class PdfPage(Image):
    """One page of a PDF file (``page`` is 1-based), an image to the model: it is rendered with
    pypdfium2 (extra ``[pdf]``) at a resolution chosen for the model's processor (or ``pdf_dpi``) when it
    is embedded or scored, never before. ``Image("file.pdf#page=3")`` is the same page, and
    :func:`modalbridge.media.pdf_pages` yields every page of a file lazily::

        from modalbridge import Embedder, PdfPage
        from modalbridge.media import pdf_pages

        vectors = embedder.embed_documents([PdfPage("report.pdf", page=1), *pdf_pages("slides.pdf")])
    """

    page: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.source, (str, bytes, bytearray, BytesIO)):
            raise TypeError(f"PdfPage: the source must be a path (or PDF bytes), got {_describe_source(self.source)}")
        if isinstance(self.page, bool) or not isinstance(self.page, (int, np.integer)) or self.page < 1:
            raise ValueError(f"PdfPage({self.describe_file()}): page must be a whole number from 1, got {self.page!r}")
        object.__setattr__(self, "page", int(self.page))

    @classmethod
    def from_uri(cls, uri: str) -> "PdfPage":
        """``PdfPage.from_uri("file.pdf#page=3")``; raises ``ValueError`` for anything else."""
        parsed = parse_page_uri(uri)
        if parsed is None:
            raise ValueError(f"{uri!r} is not a PDF page address (file.pdf#page=N, N from 1)")
        return cls(parsed[0], page=parsed[1])

    @property
    def uri(self) -> str:
        """``"file.pdf#page=3"`` (for a path source)."""
        return page_uri(self.describe_file(), self.page)

    def describe_file(self) -> str:
        return _describe_source(self.source)

    def describe(self) -> str:
        return f"{self.describe_file()}#page={self.page}"


@dataclass(frozen=True)
class Audio(MediaItem):
    """A sound: a file path, encoded bytes or ``BytesIO``, a URL, or a waveform array with its
    ``sampling_rate``. It is decoded to mono and resampled to the model's rate before encoding."""

    modality: ClassVar[str] = "audio"
    sampling_rate: int | None = None
    encoded: bytes | None = field(default=None, repr=False, compare=False)
    """For a waveform decoded from a file (data loaders, Ray): the file's bytes, so that the core decodes
    and resamples them exactly as transformers would for that file (see :mod:`modalbridge.media.audio`)."""

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


MEDIA_TAGS: dict[str, type[MediaItem]] = {"image": Image, "audio": Audio, "video": Video}


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def as_media(modality: str, value: Any) -> MediaItem:
    """Tag a value the caller declared to be ``modality`` (``"image"``, ``"audio"``, ``"video"``): a path
    or ``PathLike``, URL, ``data:`` URI, bytes or ``BytesIO`` becomes ``Image``/``Audio``/``Video``; a tag
    of the right kind (or a PIL image, for images) passes through. For adapters whose framework hands
    over media references, e.g. LangChain's ``embed_image(uris=...)``."""
    tag = MEDIA_TAGS[modality]
    if isinstance(value, tag):
        return value
    if isinstance(value, MediaItem):
        raise TypeError(f"expected {modality} but got {type(value).__name__}({value.describe()})")
    if isinstance(value, (str, os.PathLike, BytesIO, bytes, bytearray)):
        return tag(os.fspath(value) if isinstance(value, os.PathLike) else value)
    if modality == "image" and PILImage is not None and isinstance(value, PILImage):
        return Image(value)
    kind = type(value).__name__
    raise TypeError(
        f"cannot read {_article(kind)} {kind} as {_article(modality)} {modality}: "
        f"pass a path, a URL, a data: URI, a BytesIO, bytes or modalbridge.{tag.__name__}(...)"
    )


def as_media_list(modality: str, values: Any, label: str = "item") -> list[MediaItem]:
    """:func:`as_media` over a list; errors name ``"<label> <index>"``."""
    if isinstance(values, (str, bytes, os.PathLike)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{label} must be a list of {modality} sources, got {type(values).__name__}")
    items = []
    for index, value in enumerate(values):
        try:
            items.append(as_media(modality, value))
        except TypeError as exc:
            raise item_error(TypeError, label, index, str(exc)) from None
    return items


def item_error(error_type: type[Exception], label: str, index: int, reason: str) -> Exception:
    """An error about one input, ``"<label> <index>: <reason>"`` (``"item 2: /x.jpg: no such file"``),
    that remembers ``label``, ``index`` and ``reason`` so adapters can renumber or rename it
    (:func:`renamed_item_error`)."""
    error = error_type(f"{label} {index}: {reason}")
    error.item_label, error.item_index, error.item_reason = label, index, reason  # type: ignore[attr-defined]
    return error


def renamed_item_error(error: Exception, names: Sequence[str | None] | None = None, offset: int = 0) -> Exception:
    """An item error renumbered by ``offset`` (for a batch that started at ``offset``) and named the way
    the caller knows the item, ``names[index]`` (a node id, a URI): ``"item 7 (node 'n7'): <reason>"``.
    Errors about a query, or not about one item, come back unchanged::

        try:
            vectors = embedder.embed_documents(items)
        except (TypeError, ValueError) as exc:
            raise renamed_item_error(exc, [f"node {n.node_id!r}" for n in nodes]) from None
    """
    label = getattr(error, "item_label", None)
    if label is None or label == "query":
        return error
    index = error.item_index + offset  # type: ignore[attr-defined]
    name = names[index] if names is not None and index < len(names) else None
    if name is None:
        renamed = item_error(type(error), label, index, error.item_reason)  # type: ignore[attr-defined]
    else:
        renamed = type(error)(f"{label} {index} ({name}): {error.item_reason}")  # type: ignore[attr-defined]
        renamed.item_label, renamed.item_index, renamed.item_reason = label, index, error.item_reason  # type: ignore[attr-defined]
    return renamed


def check_item(item: Any, index: int | None = None) -> Item:
    """Return ``item`` if its modality is unambiguous, else raise ``TypeError`` naming it and saying how
    to tag it. A bare PIL image is returned as :class:`Image`."""
    if isinstance(item, (str, MediaItem, Combined)):
        return item
    if PILImage is not None and isinstance(item, PILImage):
        return Image(item)
    if item is None:
        reason = "None is not an input"
    else:
        described = f"the path {os.fspath(item)!r}" if isinstance(item, os.PathLike) else _describe_source(item)
        reason = (
            f"{described} is ambiguous: tag it as modalbridge.Image(...), "
            "Audio(..., sampling_rate=...) or Video(...) (a str is always text)"
        )
    raise item_error(TypeError, "item", index, reason) if index is not None else TypeError(reason)


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
