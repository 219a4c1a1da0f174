"""Images: decoded like ``transformers.image_utils.load_image`` (EXIF orientation applied, RGB), except
that high-bit-depth images are scaled to 8 bits instead of clipped (Pillow's ``convert("RGB")`` clips a
16-bit grayscale PNG to almost all white) and palette images are looked up in their palette. One page of
a PDF (``PdfPage`` or ``Image("file.pdf#page=N")``) is rendered by :mod:`modalbridge.media.pdf`."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import numpy as np

from modalbridge.items import Image, is_url
from modalbridge.media.checks import check_image_array
from modalbridge.media.common import MediaError, _read_source
from modalbridge.media.pdf import PageResolution, is_pdf_page, render_page

HIGH_BIT_DEPTH_MODES = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535, "F": 1.0}
"""Pillow modes with more than 8 bits per pixel, and the value that maps to white. Pillow opens 16-bit
grayscale PNG/TIFF as ``I;16`` (older versions: ``I``); ``F`` (32-bit float) images are taken as 0-1."""


def to_rgb(image: Any) -> Any:
    """A PIL image as 8-bit RGB, faithfully: high-bit-depth grayscale scaled (``v * 255 / max``,
    rounded), palette images through their palette (transparency dropped, colours kept), else
    ``convert("RGB")`` as transformers does."""
    from PIL import Image as PILImageModule

    white = HIGH_BIT_DEPTH_MODES.get(image.mode)
    if white is not None:
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError(f"the {image.mode} image holds non-finite values")
        gray = np.clip(np.rint(values * (255.0 / white)), 0, 255).astype(np.uint8)
        return PILImageModule.fromarray(gray, mode="L").convert("RGB")
    if image.mode in ("P", "PA"):
        return image.convert("RGBA").convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def decode_image(
    item: Image,
    allow_fetch: bool = False,
    fetch_policy: Any = None,
    jpeg_min_edge: int | None = None,
    page_resolution: PageResolution | None = None,
) -> Any:
    """A PIL image (RGB, EXIF-oriented) from any :class:`Image` source; arrays and tensors pass through
    once checked (numbers, 1/3/4 channels, non-empty, finite). A PDF page is rendered at
    ``page_resolution`` (default: :data:`~modalbridge.media.pdf.DEFAULT_PDF_DPI`).

    ``jpeg_min_edge`` (opt-in, approximate): a JPEG is decoded at 1/2, 1/4 or 1/8 of its size by the
    decoder's DCT scaling (Pillow's ``draft``), as small as keeps both sides at least this many pixels;
    for processors that shrink images to that size anyway. Other formats decode exactly."""
    source = item.source
    if is_pdf_page(item):
        return render_page(item, page_resolution or PageResolution())
    if isinstance(source, str) and source.lower().endswith(".pdf") and not is_url(source):
        raise MediaError(
            f"{source}: a PDF is a document of pages; address one page as '{source}#page=N' (from 1), "
            "or embed them all with modalbridge.media.pdf_pages(path)"
        )
    try:
        from PIL import Image as PILImageModule
        from PIL import ImageOps
    except ImportError as exc:  # pragma: no cover
        raise MediaError("decoding images needs Pillow (pip install pillow)") from exc
    if isinstance(source, PILImageModule.Image):
        if source.width == 0 or source.height == 0:
            raise MediaError(f"{item.describe()}: the image is empty")
        return source
    if hasattr(source, "shape"):  # numpy array or torch tensor: the processor takes HWC / CHW directly
        check_image_array(source, item.describe())
        return source
    data = _read_source(item, allow_fetch, fetch_policy)
    try:
        image = PILImageModule.open(BytesIO(data) if isinstance(data, bytes) else data)
        if jpeg_min_edge and image.format == "JPEG":
            image.draft("RGB", (jpeg_min_edge, jpeg_min_edge))
        image = ImageOps.exif_transpose(image)
        return to_rgb(image)
    except Exception as exc:
        raise MediaError(f"{item.describe()}: cannot decode image ({exc})") from None
