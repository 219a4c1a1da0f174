"""Length-aware batching of images for vision-language models (Qwen2-VL / Qwen2.5-VL / Qwen3-VL style).

A Qwen-VL processor resizes each image to a multiple of ``patch_size * merge_size`` pixels within
``[min_pixels, max_pixels]`` and turns it into one visual token per ``(patch_size * merge_size)²`` pixels
(Qwen3-VL: one per 32x32 pixels, so ~300 for a 640x480 photo and 16,384 at its default ``max_pixels``).
The language model then pads every sequence of a batch to the longest one, so a batch that mixes a
thumbnail with a poster costs as much as a batch of posters. Ordering images by their visual-token count
before cutting batches (as sentence-transformers orders texts by length) keeps like with like::

    from modalbridge.batching import visual_token_counter

    count = visual_token_counter(model)            # None for processors without a pixel budget (CLIP)
    order = sorted(range(len(images)), key=lambda i: -count(images[i]))

The count reads only the image header (Pillow opens files lazily), so it costs microseconds per image;
an image whose size cannot be read counts as 0 and its error surfaces when it is decoded.

``max_pixels`` is the memory knob: a batch holds at most ``batch_size * max_pixels / (patch_size *
merge_size)²`` visual tokens, and the activation memory of a forward pass grows with that number (see the
README for the figures).
"""

from __future__ import annotations

from io import BytesIO
from typing import Any, Callable

from modalbridge.items import Image, check_item


def pixel_budget(image_processor: Any) -> tuple[int, int, int] | None:
    """``(factor, min_pixels, max_pixels)`` of a Qwen-VL-style image processor (``factor`` = patch size
    x merge size: one visual token per ``factor²`` pixels), or ``None`` for other processors."""
    patch, merge = getattr(image_processor, "patch_size", None), getattr(image_processor, "merge_size", None)
    size = getattr(image_processor, "size", None)
    if not isinstance(patch, int) or not isinstance(merge, int) or size is None:
        return None
    get = size.get if hasattr(size, "get") else lambda key, default=None: getattr(size, key, default)
    min_pixels = get("shortest_edge", None) or getattr(image_processor, "min_pixels", None)
    max_pixels = get("longest_edge", None) or getattr(image_processor, "max_pixels", None)
    if not min_pixels or not max_pixels:
        return None
    return patch * merge, int(min_pixels), int(max_pixels)


def visual_tokens(height: int, width: int, budget: tuple[int, int, int]) -> int:
    """Visual tokens an image of ``height`` x ``width`` pixels becomes (the processor's ``smart_resize``)."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    factor, min_pixels, max_pixels = budget
    try:
        resized_height, resized_width = smart_resize(height, width, factor, min_pixels, max_pixels)
    except ValueError:  # an extreme aspect ratio: the processor will say so when it gets there
        return 0
    return (resized_height // factor) * (resized_width // factor)


def image_size(item: Any) -> tuple[int, int] | None:
    """``(height, width)`` of an image item from its header only, or ``None`` when it cannot be read
    cheaply (URLs are never fetched for this; unreadable files are reported when decoded)."""
    item = check_item(item) if not isinstance(item, Image) else item
    if not isinstance(item, Image):
        return None
    source = item.source
    if hasattr(source, "size") and hasattr(source, "mode"):  # a PIL image
        return source.size[1], source.size[0]
    if hasattr(source, "shape"):  # HWC or CHW
        shape = tuple(source.shape)
        if len(shape) != 3:
            return None
        return (shape[1], shape[2]) if shape[0] in (1, 3, 4) and shape[2] not in (1, 3, 4) else (shape[0], shape[1])
    if isinstance(source, (bytes, bytearray)):
        opened: Any = BytesIO(bytes(source))
    elif isinstance(source, BytesIO):
        opened = BytesIO(source.getvalue())
    elif isinstance(source, str) and not source.startswith(("data:", "http://", "https://")):
        opened = source
    else:
        return None
    from PIL import Image as PILImage

    try:
        with PILImage.open(opened) as image:
            return image.size[1], image.size[0]
    except Exception:
        return None


def visual_token_counter(model: Any) -> Callable[[Any], int] | None:
    """A function from an image item to its visual-token count for ``model``'s image processor, or
    ``None`` when the processor has no pixel budget (fixed-size models such as CLIP gain nothing)."""
    first = model[0] if hasattr(model, "__getitem__") and len(model) else None
    processor = getattr(first, "processor", None)
    budget = pixel_budget(getattr(processor, "image_processor", None))
    if budget is None:
        return None

    def count(item: Any) -> int:
        size = image_size(item)
        return 0 if size is None else visual_tokens(size[0], size[1], budget)

    return count


def order_by_cost(costs: list[int]) -> list[int]:
    """Positions, most costly first; equal costs keep their input order (stable)."""
    return sorted(range(len(costs)), key=lambda position: -costs[position])
