"""A self-contained HTML page of search results, to look at instead of read.

Every hit is a card: images as thumbnails, PDF pages as thumbnails linking to the page
(``file.pdf#page=N``, relative to the page, which PDF viewers open at that page), sounds as an ``<audio controls>`` player over a drawing of
the waveform, videos as a ``<video controls>`` player over a strip of frames, text files as an
excerpt; with its rank, score, modality and path. Media are embedded as ``data:`` URIs, so the page
opens anywhere (send it, open it from another folder); a file larger than ``max_embed_bytes`` is
linked by its relative path instead::

    from modalbridge.cli.report import PageSection, write_results_page

    write_results_page("results.html", [PageSection("a red circle", result)])
"""

from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from modalbridge.cli.results import Hit, SearchResult
from modalbridge.items import Audio, Image, Video, modality_of, parse_page_uri
from modalbridge.media import MediaError, decode_image, read_audio

__all__ = ["PageSection", "render_results_page", "write_results_page", "MAX_EMBED_BYTES"]

MAX_EMBED_BYTES = 20 * 1024 * 1024
"""Media files up to this size are embedded in the page; larger ones are linked."""

THUMBNAIL_SIZE = 320

MIME_TYPES = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif", ".bmp": "image/bmp",
    ".webp": "image/webp", ".tif": "image/tiff", ".tiff": "image/tiff",
    ".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg", ".oga": "audio/ogg", ".opus": "audio/ogg",
    ".mp3": "audio/mpeg", ".aac": "audio/aac", ".m4a": "audio/mp4",
    ".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".mov": "video/quicktime",
    ".mkv": "video/x-matroska", ".avi": "video/x-msvideo", ".wmv": "video/x-ms-wmv", ".flv": "video/x-flv",
}  # fmt: skip


@dataclass
class PageSection:
    """One query and its results on the page."""

    title: str
    result: SearchResult
    expected: str | None = None
    """The path of the item that should come first (marked; the section says whether it did)."""
    description: str | None = None


# -- media as data ------------------------------------------------------------------------------------


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _png_uri(image: Any) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return _data_uri(buffer.getvalue(), "image/png")


def _thumbnail_uri(path: str) -> str:
    """A thumbnail of an image file (PNG for small pictures, JPEG for photos)."""
    picture = decode_image(Image(path))
    picture.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    if max(picture.size) <= 128:
        return _png_uri(picture)
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="JPEG", quality=85)
    return _data_uri(buffer.getvalue(), "image/jpeg")


def _waveform_uri(path: str, width: int = 320, height: int = 64) -> str:
    """A drawing of the sound: the min/max envelope of each pixel column."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    waveform, _rate = read_audio(Audio(path))
    picture = PILImage.new("RGB", (width, height), (246, 247, 251))
    draw = ImageDraw.Draw(picture)
    peak = float(np.abs(waveform).max()) or 1.0
    columns = np.array_split(waveform, width) if len(waveform) >= width else [waveform[i : i + 1] for i in range(len(waveform))]
    middle = height / 2
    for x, column in enumerate(columns):
        if column.size == 0:
            continue
        low, high = float(column.min()) / peak, float(column.max()) / peak
        draw.line([(x, middle - high * (middle - 2)), (x, middle - low * (middle - 2))], fill=(52, 101, 164))
    draw.line([(0, middle), (width, middle)], fill=(200, 205, 215))
    return _png_uri(picture)


def _frame_strip_uri(path: str, count: int = 4, max_frames: int = 600) -> str | None:
    """Up to ``count`` evenly spaced frames side by side (from the first ``max_frames`` frames)."""
    import av
    from PIL import Image as PILImage

    frames = []
    with av.open(path) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index >= max_frames:
                break
            frames.append(frame.to_image())
    if not frames:
        return None
    picks = [frames[i] for i in np.linspace(0, len(frames) - 1, num=min(count, len(frames))).round().astype(int)]
    height = 96
    scaled = [f.resize((max(1, round(f.width * height / f.height)), height)) for f in picks]
    strip = PILImage.new("RGB", (sum(s.width for s in scaled) + 2 * (len(scaled) - 1), height), (255, 255, 255))
    x = 0
    for picture in scaled:
        strip.paste(picture, (x, 0))
        x += picture.width + 2
    return _png_uri(strip)


class _Media:
    """Renders one file as HTML, embedding or linking it."""

    def __init__(self, page_dir: Path, max_embed_bytes: int) -> None:
        self.page_dir = page_dir
        self.max_embed_bytes = max_embed_bytes

    def source(self, path: str) -> tuple[str, bool]:
        """A ``data:`` URI of the file, or its path relative to the page; and whether it is embedded."""
        mime = MIME_TYPES.get(os.path.splitext(path)[1].lower(), "application/octet-stream")
        if os.path.getsize(path) <= self.max_embed_bytes:
            with open(path, "rb") as f:
                return _data_uri(f.read(), mime), True
        return Path(os.path.relpath(path, self.page_dir)).as_posix(), False

    def page(self, address: str) -> str:
        """A PDF page: its thumbnail, linking to the page (the PDF's path relative to the page + ``#page=N``)."""
        file, number = parse_page_uri(address)  # type: ignore[misc]
        link = Path(os.path.relpath(file, self.page_dir)).as_posix() + f"#page={number}"
        thumbnail = _thumbnail_uri(address)
        alt = f"{os.path.basename(file)}, page {number}"
        return f'<a class="page" href="{_e(link)}"><img class="thumb" alt="{_e(alt)}" src="{thumbnail}"></a>'

    def render(self, path: str, modality: str, document: str | None = None) -> str:
        try:
            if modality == "image" and parse_page_uri(path) is not None:
                return self.page(path)
            if modality == "image":
                return f'<img class="thumb" alt="{_e(os.path.basename(path))}" src="{_thumbnail_uri(path)}">'
            if modality == "audio":
                src, embedded = self.source(path)
                return (
                    f'<img class="wave" alt="waveform" src="{_waveform_uri(path)}">'
                    f'<audio controls preload="metadata" src="{_e(src)}"></audio>' + ("" if embedded else _linked())
                )
            if modality == "video":
                src, embedded = self.source(path)
                strip = _frame_strip_uri(path)
                return (
                    f'<video controls muted loop playsinline preload="metadata" src="{_e(src)}"></video>'
                    + (f'<img class="strip" alt="frames" src="{strip}">' if strip else "")
                    + ("" if embedded else _linked())
                )
            if modality == "text":
                text = document if document is not None else Path(path).read_text(encoding="utf-8", errors="replace")
                excerpt = text if len(text) <= 400 else text[:400] + "…"
                return f'<blockquote class="text">{_e(excerpt)}</blockquote>'
        except (OSError, MediaError, ValueError) as exc:
            return f'<div class="missing">cannot show this file: {_e(str(exc))}</div>'
        except Exception as exc:  # noqa: BLE001 - a preview must never break the page
            return f'<div class="missing">cannot show this file: {_e(type(exc).__name__)}: {_e(str(exc))}</div>'
        return ""


def _linked() -> str:
    return '<div class="note">large file: linked, not embedded</div>'


def _e(text: str) -> str:
    return html.escape(text, quote=True)


# -- the page -----------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1d2330; background: #fafbfc; }
h1 { font-size: 22px; margin: 0 0 4px; }
.sub { color: #5b6475; margin-bottom: 18px; }
section { background: #fff; border: 1px solid #e1e5ec; border-radius: 10px; padding: 14px 16px; margin-bottom: 18px; }
h2 { font-size: 17px; margin: 0 0 8px; }
.query { display: flex; gap: 14px; align-items: center; margin-bottom: 10px; }
.query .label { color: #5b6475; font-size: 13px; }
.query .text { font-size: 17px; font-weight: 600; }
.query img.thumb { width: 96px; height: 96px; }
.status { font-size: 14px; margin: 4px 0 10px; }
.status.ok { color: #1a7f37; } .status.miss { color: #c62828; }
.note { color: #6b7280; font-size: 12px; margin: 2px 0; }
.hits { display: flex; flex-wrap: wrap; gap: 12px; }
.hit { width: 172px; border: 2px solid #e1e5ec; border-radius: 8px; padding: 6px; background: #fff; }
.hit.expected { border-color: #1a7f37; box-shadow: 0 0 0 2px #c9ebd3; }
.hit img.thumb { width: 160px; height: 160px; object-fit: contain; background: #f1f3f6; display: block; }
.hit img.wave, .query img.wave { width: 160px; height: 48px; display: block; }
.hit img.strip, .query img.strip { width: 160px; display: block; margin-top: 4px; }
audio { width: 160px; height: 32px; margin-top: 4px; }
video { width: 160px; height: 120px; background: #000; display: block; }
.meta { font-size: 13px; margin-top: 6px; display: flex; gap: 6px; align-items: baseline; }
.rank { font-weight: 700; } .score { color: #374151; font-variant-numeric: tabular-nums; }
.modality { font-size: 11px; padding: 1px 6px; border-radius: 8px; background: #eef1f6; color: #374151; }
.modality.image { background: #e3efff; } .modality.audio { background: #fff1d6; } .modality.video { background: #f1e5ff; }
.modality.text { background: #e6f6ea; }
.path { font-size: 11px; color: #5b6475; word-break: break-all; margin-top: 2px; }
blockquote.text { margin: 0; font-size: 12px; max-height: 150px; overflow: hidden; background: #f6f8fa; padding: 6px; }
.missing { color: #c62828; font-size: 12px; }
.expected-item { display: flex; gap: 8px; align-items: center; margin-bottom: 10px; font-size: 12px; color: #5b6475; }
.expected-item img.thumb { width: 64px; height: 64px; }
.expected-item video { width: 96px; height: 72px; }
"""


def _query_html(result: SearchResult, media: _Media) -> str:
    query = result.query
    modality = modality_of(query)
    if isinstance(query, str):
        body = f'<span class="text">“{_e(query)}”</span>'
    elif isinstance(query, (Image, Audio, Video)) and isinstance(query.source, str):
        body = media.render(query.source, modality) + f'<span class="path">{_e(query.source)}</span>'
    else:
        body = f'<span class="text">{_e(str(query))}</span>'
    return f'<div class="query" data-modality="{modality}"><span class="label">{modality} query</span>{body}</div>'


def _hit_html(hit: Hit, media: _Media, reranked: bool, expected: str | None) -> str:
    is_expected = expected is not None and os.path.abspath(hit.path) == os.path.abspath(expected)
    was = f' <span class="note">(was #{hit.retrieval_rank})</span>' if reranked else ""
    return (
        f'<div class="hit{" expected" if is_expected else ""}" data-rank="{hit.rank}" data-modality="{_e(hit.modality)}" '
        f'data-path="{_e(hit.path)}" data-score="{hit.score:.6f}">'
        f"{media.render(hit.path, hit.modality, hit.document)}"
        f'<div class="meta"><span class="rank">#{hit.rank}</span><span class="score">{hit.score:.3f}</span>'
        f'<span class="modality {_e(hit.modality)}">{_e(hit.modality)}</span>{was}</div>'
        f'<div class="path" title="{_e(hit.path)}">{_e(os.path.basename(hit.path))}</div></div>'
    )


def _status_html(section: PageSection, media: _Media) -> str:
    if section.expected is None:
        return ""
    target = os.path.abspath(section.expected)
    ranks = [h.rank for h in section.result.hits if os.path.abspath(h.path) == target]
    name = _e(os.path.basename(section.expected))
    if ranks and ranks[0] == 1:
        return f'<div class="status ok" data-ok="1">✓ the top hit is the expected item ({name})</div>'
    where = f"at rank {ranks[0]}" if ranks else "not in the results"
    modality = next((h.modality for h in section.result.hits if h.modality), None) or section.result.query_modality
    from modalbridge.cli.files import file_modality

    preview = media.render(section.expected, file_modality(section.expected) or modality)
    return (
        f'<div class="status miss" data-ok="0">✗ the expected item ({name}) is {where}</div>'
        f'<div class="expected-item"><span class="label">expected:</span>{preview}</div>'
    )


def render_results_page(
    sections: Sequence[PageSection],
    page_dir: str | os.PathLike = ".",
    *,
    title: str = "modalbridge search results",
    subtitle: str | None = None,
    max_embed_bytes: int = MAX_EMBED_BYTES,
) -> str:
    """The page's HTML (files too large to embed are linked relative to ``page_dir``)."""
    media = _Media(Path(page_dir).resolve(), max_embed_bytes)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
    ]
    if subtitle:
        parts.append(f'<div class="sub">{_e(subtitle)}</div>')
    for number, section in enumerate(sections, 1):
        result = section.result
        parts.append(f'<section id="q{number}"><h2>{_e(section.title)}</h2>')
        if section.description:
            parts.append(f'<div class="note">{_e(section.description)}</div>')
        parts.append(_query_html(result, media))
        parts.append(_status_html(section, media))
        parts.extend(f'<div class="note">{_e(note)}</div>' for note in result.notes)
        if result.hits:
            parts.append('<div class="hits">')
            parts.extend(_hit_html(hit, media, result.reranked, section.expected) for hit in result.hits)
            parts.append("</div>")
        else:
            parts.append('<div class="note">no results</div>')
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_results_page(
    path: str | os.PathLike,
    sections: Sequence[PageSection],
    *,
    title: str = "modalbridge search results",
    subtitle: str | None = None,
    max_embed_bytes: int = MAX_EMBED_BYTES,
) -> Path:
    """Write the page to ``path`` (folders are created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    page = render_results_page(sections, path.parent, title=title, subtitle=subtitle, max_embed_bytes=max_embed_bytes)
    path.write_text(page, encoding="utf-8")
    return path
