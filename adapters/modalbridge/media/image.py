"""Images: decoded like ``transformers.image_utils.load_image`` (EXIF orientation applied, RGB)."""

from __future__ import annotations

from io import BytesIO
from typing import Any

from modalbridge.items import Image
from modalbridge.media.common import MediaError, _read_source


def decode_image(item: Image, allow_fetch: bool = False) -> Any:
    """A PIL image (RGB, EXIF-oriented) from any :class:`Image` source; arrays and tensors pass through."""
    source = item.source
    try:
        from PIL import Image as PILImageModule
        from PIL import ImageOps
    except ImportError as exc:  # pragma: no cover
        raise MediaError("decoding images needs Pillow (pip install pillow)") from exc
    if isinstance(source, PILImageModule.Image):
        return source
    if hasattr(source, "shape"):  # numpy array or torch tensor: the processor takes HWC / CHW directly
        if len(source.shape) != 3:
            raise MediaError(f"{item.describe()}: an image array must have 3 dimensions (H, W, C) or (C, H, W)")
        return source
    data = _read_source(item, allow_fetch)
    try:
        image = PILImageModule.open(BytesIO(data) if isinstance(data, bytes) else data)
        image = ImageOps.exif_transpose(image)
        return image.convert("RGB")
    except Exception as exc:
        raise MediaError(f"{item.describe()}: cannot decode image ({exc})") from None
