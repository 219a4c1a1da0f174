"""From tagged items to sentence-transformers inputs: validation against the model, then decoding.

Two rules sentence-transformers does not enforce on its own:

- Text stays text. sentence-transformers reads a string that ends in a media extension and names an
  existing file, or looks like an http(s) media URL, as that media (and fetches it). Such strings are
  passed as ``{"text": s}``, which it always treats as text.
- Nothing is silently dropped. Chat-template models accept any modality but drop content their template
  cannot render (an audio document on an image/text model scores like an empty one), so every item is
  checked against the modalities the model really takes before any compute.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from modalbridge.items import (
    Audio,
    Combined,
    Image,
    MediaItem,
    Modality,
    Video,
    check_item,
    describe_item,
    format_modality,
    item_error,
    modality_of,
)
from modalbridge.media import MediaError, PageResolution, decode_audio, decode_image, decode_video, map_parallel

CONTENT_MODALITIES = ("text", "image", "audio", "video")


def model_modalities(model: Any) -> list[Modality]:
    """What the model lists, e.g. ``['text', 'image']`` or ``['text', 'image', 'video', 'message']``."""
    return list(getattr(model, "modalities", ["text"]))


def content_modalities(modalities: Sequence[Modality]) -> list[str]:
    """The single modalities a model really takes (``"message"`` is a format, not content)."""
    return [m for m in CONTENT_MODALITIES if m in modalities]


def is_supported(modality: Modality, modalities: Sequence[Modality]) -> bool:
    """A single modality must be listed; a combined one must be listed as such, or the model must take
    chat messages (which carry several parts) and every part must be a listed modality."""
    if isinstance(modality, str):
        return modality in content_modalities(modalities)
    if modality in modalities:
        return True
    return "message" in modalities and all(part in content_modalities(modalities) for part in modality)


def unsupported_error(
    index: int, item: Any, modality: Modality, modalities: Sequence[Modality], label: str, hint: str | None = None
) -> ValueError:
    supported = content_modalities(modalities)
    combined = [format_modality(m) for m in modalities if isinstance(m, tuple)]
    if "message" in modalities and len(supported) > 1:
        combined.append("combinations of " + "/".join(supported))
    names = ", ".join(supported + combined)
    reason = (
        f"{describe_item(item)} is {format_modality(modality)}, which this model does not support; "
        f"it supports: {names}" + (f" ({hint})" if hint else "")
    )
    return item_error(ValueError, label, index, reason)


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be tokenized, or ``None``: a lone surrogate (``"\\ud800"``, e.g. from a
    badly decoded file) is not Unicode text and fails deep inside the tokenizer otherwise."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"the text holds a lone surrogate {text[exc.start]!r} at position {exc.start}, which is not valid "
            "Unicode (decode the source with errors='replace' or fix its encoding)"
        )
    return None


def validate_item(
    index: int, item: Any, modalities: Sequence[Modality], label: str = "item", hints: dict[str, str] | None = None
) -> Modality:
    """Check one item before any compute (tagging, modality, text encodable); return its modality.
    Raises ``TypeError``/``ValueError`` naming ``"<label> <index>"`` and the reason. ``hints`` maps a
    modality to advice added to its error. Cheap: nothing is decoded (decoders check media content)."""
    try:
        modality = modality_of(item)
    except TypeError as exc:
        raise item_error(TypeError, label, index, str(exc)) from None
    if not is_supported(modality, modalities):
        hint = (hints or {}).get(format_modality(modality))
        raise unsupported_error(index, item, modality, modalities, label, hint)
    text = item if isinstance(item, str) else getattr(item, "text", None) if isinstance(item, Combined) else None
    problem = text_problem(text) if text is not None else None
    if problem:
        raise item_error(ValueError, label, index, problem)
    return modality


def validate(
    items: Sequence[Any], modalities: Sequence[Modality], label: str = "item", hints: dict[str, str] | None = None
) -> list[Modality]:
    """:func:`validate_item` over every item, before any compute; return their modalities."""
    return [validate_item(index, item, modalities, label, hints) for index, item in enumerate(items)]


def check_finite_rows(
    vectors: Any, indices: Sequence[int], what: str = "embedding", label: str = "item"
) -> dict[int, Exception]:
    """The rows of ``vectors`` (one per index) that hold NaN or infinity, as errors naming the item: a
    model can turn odd input into NaN, and a NaN vector must never reach a store (it poisons
    similarity search, and Chroma then refuses the whole batch naming nothing)."""
    array = np.asarray(vectors)
    if array.dtype.kind != "f":
        return {}
    finite = np.isfinite(array.reshape(len(indices), -1)).all(axis=1)
    return {
        index: item_error(ValueError, label, index, f"the model gave a non-finite {what} (NaN or infinity) for it")
        for index, ok in zip(indices, finite)
        if not ok
    }


def protect_text(text: str) -> str | dict[str, str]:
    """``text`` itself, or ``{"text": text}`` where sentence-transformers would read it as media."""
    from sentence_transformers.base.modality import infer_modality

    try:
        return text if infer_modality(text) == "text" else {"text": text}
    except ValueError:
        return {"text": text}


def _feature_extractors(model: Any) -> list[Any]:
    first = model[0] if hasattr(model, "__getitem__") else model
    processor = getattr(first, "processor", None)
    return [c for c in (getattr(processor, "feature_extractor", None), processor) if c is not None]


def audio_sampling_rate(model: Any) -> int:
    """The sampling rate of the model's audio feature extractor."""
    for candidate in _feature_extractors(model):
        rate = getattr(candidate, "sampling_rate", None)
        if isinstance(rate, int):
            return rate
    raise ValueError("this model's processor has no audio sampling rate, so it cannot take audio")


def random_crop_length(model: Any) -> int | None:
    """The window, in samples, of a feature extractor that crops longer clips at a RANDOM offset
    (CLAP's ``truncation="rand_trunc"``), else ``None``. Clips are cut to it first so that the same clip
    always gets the same embedding."""
    for candidate in _feature_extractors(model):
        if getattr(candidate, "truncation", None) == "rand_trunc" and getattr(candidate, "nb_max_samples", None):
            return int(candidate.nb_max_samples)
    return None


def reduced_decode_edge(model: Any) -> int | None:
    """The smallest image side the model's image processor resizes to (CLIP's ``shortest_edge``, or the
    larger of a fixed ``height``/``width``), or ``None`` when its sizes depend on the image (Qwen-VL's
    pixel budgets) or it does not resize: then reduced-size decoding does not apply."""
    for candidate in _feature_extractors(model):
        image_processor = getattr(candidate, "image_processor", candidate)
        size = getattr(image_processor, "size", None)
        if not getattr(image_processor, "do_resize", False) or not size:
            continue
        size = dict(size)
        if size.get("shortest_edge"):
            return int(size["shortest_edge"])
        if size.get("height") and size.get("width"):
            return int(max(size["height"], size["width"]))
    return None


def _size_value(size: Any, name: str) -> int | None:
    value = size.get(name) if isinstance(size, dict) else getattr(size, name, None)
    return int(value) if isinstance(value, (int, float)) and value > 0 else None


def page_resolution(model: Any, dpi: float | None = None) -> PageResolution:
    """How large to render PDF pages for this model: ``dpi`` when given, else from its image processor.

    * Qwen-VL-like processors (a ``merge_size``; ``size`` holds pixel counts): about ``max_pixels``
      pixels in all (``size["longest_edge"]``, or a ``max_pixels`` attribute);
    * CLIP-like processors (resize the shorter side, then crop): the shorter side at ``size["shortest_edge"]``;
    * processors that resize to a fixed ``height`` x ``width``: the shorter side at the larger of the two;
    * processors that bound the longer side: the longer side at ``size["longest_edge"]``;
    * anything else: :data:`~modalbridge.media.DEFAULT_PDF_DPI`.

    So a page is rendered about as large as the model will look at it: no sharper (wasted rendering and
    memory), no blurrier (an upscaled page)."""
    if dpi is not None:
        return PageResolution(dpi=float(dpi))
    first = model[0] if hasattr(model, "__getitem__") else model
    processor = getattr(first, "processor", None)
    image_processor = getattr(processor, "image_processor", None) or processor
    if image_processor is None:
        return PageResolution()
    size = getattr(image_processor, "size", None) or {}
    max_pixels = getattr(image_processor, "max_pixels", None)
    if getattr(image_processor, "merge_size", None) is not None:
        max_pixels = max_pixels or _size_value(size, "longest_edge")
        if max_pixels:
            return PageResolution(max_pixels=int(max_pixels))
    shortest = _size_value(size, "shortest_edge")
    if shortest:
        return PageResolution(shortest_edge=shortest)
    height, width = _size_value(size, "height"), _size_value(size, "width")
    if height and width:
        return PageResolution(shortest_edge=max(height, width))
    longest = _size_value(size, "longest_edge")
    if longest:
        return PageResolution(longest_edge=longest)
    return PageResolution()


class Preparer:
    """Turns validated items into sentence-transformers inputs for one model."""

class Preparer:
    """Turns validated items into sentence-transformers inputs for one model. ``jpeg_min_edge``: decode
    JPEGs at reduced size (see :func:`modalbridge.media.decode_image`; :func:`reduced_decode_edge`)."""

    def __init__(
        self,
        model: Any,
        allow_fetch: bool = False,
        max_workers: int = 8,
        fetch_policy: Any = None,
        jpeg_min_edge: int | None = None,
        *,
        pdf_dpi: float | None = None,
    ) -> None:
        self.model = model
        self.allow_fetch = allow_fetch
        self.fetch_policy = fetch_policy
        self.jpeg_min_edge = jpeg_min_edge
        self.max_workers = max_workers
        self.pdf_dpi = pdf_dpi
        self._sampling_rate: int | None = None
        self._page_resolution: PageResolution | None = None
        self._crop_length = random_crop_length(model)

    @property
    def page_resolution(self) -> PageResolution:
        """How PDF pages are rendered for this model (see :func:`page_resolution`)."""
        if self._page_resolution is None:
            self._page_resolution = page_resolution(self.model, self.pdf_dpi)
        return self._page_resolution

    @property
    def sampling_rate(self) -> int:
        if self._sampling_rate is None:
            self._sampling_rate = audio_sampling_rate(self.model)
        return self._sampling_rate

    def media(self, item: MediaItem, in_pair: bool = False) -> Any:
        if isinstance(item, Image):
            return decode_image(item, self.allow_fetch, self.fetch_policy, self.jpeg_min_edge, self.page_resolution)
        if isinstance(item, Audio):
            waveform = decode_audio(
                item, self.sampling_rate, self.allow_fetch, self.fetch_policy, max_samples=self._crop_length
            )
            return {"array": waveform, "sampling_rate": self.sampling_rate}
        if isinstance(item, Video):
            return decode_video(item, self.allow_fetch, in_pair=in_pair, fetch_policy=self.fetch_policy)
        raise TypeError(f"unknown media item {type(item).__name__}")  # pragma: no cover

    def one(self, item: Any, in_pair: bool = False) -> Any:
        item = check_item(item)
        if isinstance(item, str):
            return protect_text(item)
        if isinstance(item, Combined):
            parts = {}
            for name, part in item.parts.items():
                value = part if name == "text" else self.media(part, in_pair)
                # decode_video returns {"video": ...}; a combined dict holds the inner value
                parts[name] = value["video"] if name == "video" else value
            return parts
        value = self.media(item, in_pair)
        # Pairs infer each side on its own: keep the modality explicit there too.
        if in_pair and isinstance(item, Image):
            return {"image": value}
        return value

    def many(
        self,
        items: Sequence[Any],
        in_pair: bool = False,
        label: str = "item",
        indices: Sequence[int] | None = None,
        errors: dict[int, Exception] | None = None,
    ) -> Any:
        """Decode in parallel; a failure names the item (by its index in ``indices``, the caller's
        numbering) and the source. Returns the inputs as a list; or, when ``errors`` is given, as a dict
        index -> input for the items that decoded, with each failure recorded in ``errors``."""
        indices = list(range(len(items))) if indices is None else list(indices)

        def prepare(indexed: tuple[int, Any]) -> Any:
            index, item = indexed
            try:
                return self.one(item, in_pair)
            except MediaError as exc:
                error = item_error(MediaError, label, index, str(exc))
                if errors is None:
                    raise error from None
                return error

        prepared = map_parallel(prepare, list(zip(indices, items)), self.max_workers)
        if errors is None:
            return prepared
        decoded = {}
        for index, value in zip(indices, prepared):
            if isinstance(value, MediaError):
                errors[index] = value
            else:
                decoded[index] = value
        return decoded
