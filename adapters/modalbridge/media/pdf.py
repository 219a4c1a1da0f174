"""PDF pages as images: rendered one at a time with pypdfium2 (PDFium; extra ``[pdf]``).

A page is an image to the model (visual document retrieval: no OCR, no text extraction). It is
addressed as ``file.pdf#page=N`` (1-based, the PDF open-parameter convention) or tagged as
:class:`~modalbridge.PdfPage`, and rendered only when it is embedded or scored::

    from modalbridge import Embedder
    from modalbridge.media import pdf_pages

    pages = pdf_pages("report.pdf")           # opens the file once to count pages; renders nothing
    vectors = embedder.embed_documents(pages)  # each page rendered for the model, then encoded

The resolution is chosen for the model (:class:`PageResolution`, derived from its image processor by
:func:`modalbridge.inputs.page_resolution`): CLIP-like processors get the page's shorter side at their
resize size, Qwen-VL-like ones about ``max_pixels``; the ``pdf_dpi`` setting overrides it. Rotated pages
come out upright (PDFium applies ``/Rotate``). Encrypted, corrupt or empty files and pages out of range
raise :class:`MediaError` naming the file and page.

PDFium is not thread-safe, so every call into it holds one process-wide lock; pages still render one at
a time and only while they are being decoded, so memory stays flat however long the document is.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Iterator, Sequence, overload

from modalbridge.items import PdfPage, _describe_source, is_url, parse_page_uri
from modalbridge.media.errors import MediaError

__all__ = [
    "DEFAULT_PDF_DPI",
    "PDF_DPI_RANGE",
    "MAX_RENDER_PIXELS",
    "PageResolution",
    "PdfPages",
    "page_count",
    "pdf_pages",
    "render_page",
]

DEFAULT_PDF_DPI = 144.0
"""Used when the model's processor says nothing about its input size."""

PDF_DPI_RANGE = (10.0, 1200.0)
"""The ``pdf_dpi`` setting's bounds (dots per inch)."""

MAX_RENDER_PIXELS = 40_000_000
"""No page is rendered larger than this (a poster at a high dpi would otherwise take gigabytes)."""

_PDFIUM_LOCK = threading.RLock()  # PDFium is not thread-safe: one call into it at a time

# PDFium's FPDF_GetLastError codes for a document that failed to load. The code is process-wide and
# sticky, and some failures (a page tree without pages) set none: so it is set to FPDF_ERR_FILE (2) by
# a load that must fail just before each real load, and 2 afterwards means "failed without a reason".
_NO_REASON = 2
_LOAD_ERRORS = {
    1: "PDFium could not read it (unknown error)",
    _NO_REASON: "it has no pages, or its page tree cannot be read",
    3: "it is not a PDF, or it is corrupt",
    4: "it is encrypted (password-protected); decrypt it first",
    5: "it uses an unsupported security scheme",
    6: "its page tree is corrupt",
}


def _pdfium():
    try:
        import pypdfium2
    except ImportError as exc:
        raise MediaError("reading PDFs needs pypdfium2: pip install 'modalbridge[pdf]'") from exc
    return pypdfium2


def check_pdf_dpi(dpi: Any) -> None:
    """The ``pdf_dpi`` setting: ``None`` or a number of dots per inch within :data:`PDF_DPI_RANGE`."""
    if dpi is None:
        return
    low, high = PDF_DPI_RANGE
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not low <= dpi <= high:
        raise ValueError(f"pdf_dpi must be None or a number from {low:g} to {high:g}, got {dpi!r}")


@dataclass(frozen=True)
class PageResolution:
    """How large a page is rendered, in the first rule given: ``dpi`` (dots per inch), else the shorter
    side at ``shortest_edge`` pixels (CLIP-like processors: their resize size), else about ``max_pixels``
    pixels in all (Qwen-VL-like processors), else the longer side at ``longest_edge``; else
    :data:`DEFAULT_PDF_DPI`. Never more than :data:`MAX_RENDER_PIXELS`::

        PageResolution(shortest_edge=224).size(612, 792)   # a US Letter page -> (224, 290)
    """

    dpi: float | None = None
    shortest_edge: int | None = None
    max_pixels: int | None = None
    longest_edge: int | None = None

    def scale(self, width_pt: float, height_pt: float) -> float:
        """Pixels per PDF point (1/72 inch) for a page of this size (after its rotation)."""
        width_pt, height_pt = max(width_pt, 1e-3), max(height_pt, 1e-3)
        if self.dpi is not None:
            scale = self.dpi / 72.0
        elif self.shortest_edge is not None:
            scale = self.shortest_edge / min(width_pt, height_pt)
        elif self.max_pixels is not None:
            scale = math.sqrt(self.max_pixels / (width_pt * height_pt))
        elif self.longest_edge is not None:
            scale = self.longest_edge / max(width_pt, height_pt)
        else:
            scale = DEFAULT_PDF_DPI / 72.0
        return min(scale, math.sqrt(MAX_RENDER_PIXELS / (width_pt * height_pt)))

    def size(self, width_pt: float, height_pt: float) -> tuple[int, int]:
        """The rendered ``(width, height)`` in pixels, as PDFium rounds it."""
        scale = self.scale(width_pt, height_pt)
        return max(1, round(width_pt * scale)), max(1, round(height_pt * scale))


# -- opening ------------------------------------------------------------------------------------------


def _page_source(item: Any) -> tuple[Any, int, str]:
    """``(source, page, description of the file)`` of a PdfPage or of an ``Image("file.pdf#page=N")``."""
    if isinstance(item, PdfPage):
        return item.source, item.page, item.describe_file()
    parsed = parse_page_uri(getattr(item, "source", None))
    if parsed is None:  # pragma: no cover - callers check is_pdf_page first
        raise MediaError(f"{_describe_source(getattr(item, 'source', item))}: not a PDF page")
    return parsed[0], parsed[1], parsed[0]


def is_pdf_page(item: Any) -> bool:
    """Whether an image item is one PDF page (a :class:`PdfPage` or ``Image("file.pdf#page=N")``)."""
    return isinstance(item, PdfPage) or parse_page_uri(getattr(item, "source", None)) is not None


def _reset_last_error(pdfium: Any) -> None:
    """Set PDFium's last error to FPDF_ERR_FILE with a load that cannot succeed (see ``_NO_REASON``)."""
    import pypdfium2.raw as raw

    if raw.FPDF_LoadDocument(b"\0", None):  # pragma: no cover - an empty path never opens
        raise RuntimeError("PDFium opened an empty path")


def _open(source: Any, name: str):
    """An open ``PdfDocument`` (call with the lock held); errors name the file and the reason."""
    pdfium = _pdfium()
    if isinstance(source, str):
        if is_url(source):
            raise MediaError(f"{name}: PDFs are read from local files (download it first)")
        if not os.path.isfile(source):
            raise MediaError(f"{name}: no such file")
    elif isinstance(source, BytesIO):
        source = source.getvalue()
    elif isinstance(source, bytearray):
        source = bytes(source)
    try:
        _reset_last_error(pdfium)
        document = pdfium.PdfDocument(source)
    except pdfium.PdfiumError as exc:
        reason = _LOAD_ERRORS.get(getattr(exc, "err_code", None) or 0, f"PDFium could not read it ({exc})")
        raise MediaError(f"{name}: cannot read the PDF: {reason}") from None
    except OSError as exc:
        raise MediaError(f"{name}: cannot read the PDF ({exc.strerror or exc})") from None
    if len(document) == 0:
        document.close()
        raise MediaError(f"{name}: the PDF has no pages")
    return document


def page_count(source: str | os.PathLike | bytes) -> int:
    """The number of pages of a PDF (a path or the file's bytes). Raises :class:`MediaError` naming the
    file for a missing, encrypted, corrupt or empty PDF."""
    source = os.fspath(source) if isinstance(source, os.PathLike) else source
    with _PDFIUM_LOCK:
        document = _open(source, _describe_source(source))
        try:
            return len(document)
        finally:
            document.close()


def render_page(item: Any, resolution: PageResolution = PageResolution()) -> Any:
    """One page as an upright RGB ``PIL.Image`` at ``resolution`` (see :class:`PageResolution`).

    ``item``: a :class:`~modalbridge.PdfPage` or ``Image("file.pdf#page=N")``. Errors name the file and
    page: no such file, encrypted, corrupt, empty, or a page out of range."""
    source, number, name = _page_source(item)
    with _PDFIUM_LOCK:
        document = _open(source, f"{name}#page={number}")
        try:
            if not 1 <= number <= len(document):
                count = len(document)
                raise MediaError(
                    f"{name}#page={number}: out of range: the PDF has {count} page{'s' if count != 1 else ''}"
                )
            page = document[number - 1]
            try:
                width, height = page.get_size()  # in points, after the page's /Rotate
                bitmap = page.render(scale=resolution.scale(width, height), may_draw_forms=True)
                image = bitmap.to_pil().convert("RGB")  # a copy: the bitmap's buffer is freed below
                bitmap.close()
            except Exception as exc:  # noqa: BLE001 - PDFium failures become the page's error
                raise MediaError(f"{name}#page={number}: cannot render the page ({exc})") from None
            finally:
                page.close()
        finally:
            document.close()
    return image


# -- lazy page sources ----------------------------------------------------------------------------------


class PdfPages(Sequence[PdfPage]):
    """The pages of one PDF as :class:`~modalbridge.PdfPage` items, made on demand (a page is a tiny
    tag; it is rendered only when embedded or scored). Returned by :func:`pdf_pages`."""

    def __init__(self, path: str, numbers: range) -> None:
        self.path = path
        self.numbers = numbers

    def __len__(self) -> int:
        return len(self.numbers)

    @overload
    def __getitem__(self, index: int) -> PdfPage: ...

    @overload
    def __getitem__(self, index: slice) -> "PdfPages": ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return PdfPages(self.path, self.numbers[index])
        return PdfPage(self.path, page=self.numbers[index])

    def __iter__(self) -> Iterator[PdfPage]:
        return (PdfPage(self.path, page=number) for number in self.numbers)

    def __repr__(self) -> str:
        return f"pdf_pages({self.path!r}): {len(self)} pages"


def pdf_pages(path: str | os.PathLike, pages: Sequence[int] | None = None) -> PdfPages:
    """The pages of the PDF at ``path`` (all, or the 1-based numbers in ``pages``), lazily.

    The file is opened once here, to count its pages, so a missing, encrypted, corrupt or empty PDF, or
    a page number out of range, fails now with an error naming the file (and page)::

        for page in pdf_pages("slides.pdf"):
            print(page.uri, page.page)   # slides.pdf#page=1 1, ...
    """
    path = os.fspath(path)
    count = page_count(path)
    if pages is None:
        return PdfPages(path, range(1, count + 1))
    numbers = list(pages)
    for number in numbers:
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= count:
            raise MediaError(f"{path}#page={number}: out of range: the PDF has {count} page{'s' if count != 1 else ''}")
    return PdfPages(path, numbers)  # type: ignore[arg-type]
