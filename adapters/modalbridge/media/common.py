"""What every decoder shares: the error type, file-extension rules, reading a source (path, bytes,
base64, or an allowed fetch) and the thread map used for parallel decoding."""

from __future__ import annotations

import os
import re
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from typing import Callable, Sequence, TypeVar

from modalbridge.items import Audio, Image, MediaItem, PdfPage, Video, _describe_source, is_url, parse_page_uri
from modalbridge.media.errors import MediaError
from modalbridge.media.fetch import FetchPolicy, fetch_url

_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aac", ".m4a", ".opus")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".wmv", ".flv", ".m4v")


def modality_from_extension(path: str) -> str | None:
    """``"image"``, ``"audio"`` or ``"video"`` from a file name's extension, or ``None`` if unknown.

    Only for callers that were handed media references explicitly (a data loader's URIs, files to index):
    plain strings passed as text are never looked at this way. A PDF page address
    (``file.pdf#page=N``) is an image."""
    if parse_page_uri(path) is not None:
        return "image"
    lower = path.lower().split("?", 1)[0]
    for modality, extensions in (("image", IMAGE_EXTENSIONS), ("audio", AUDIO_EXTENSIONS), ("video", VIDEO_EXTENSIONS)):
        if lower.endswith(extensions):
            return modality
    return None


def tag_uri(uri: str, modality: str | None = None) -> MediaItem:
    """Tag a media URI (path or URL) as Image/Audio/Video, by ``modality`` or by its extension; a PDF
    page address ``file.pdf#page=N`` becomes a :class:`~modalbridge.PdfPage`."""
    modality = modality or modality_from_extension(uri)
    if modality == "image" and parse_page_uri(uri) is not None:
        return PdfPage.from_uri(uri)
    tags = {"image": Image, "audio": Audio, "video": Video}
    if modality is None and uri.lower().split("?", 1)[0].endswith(".pdf"):
        raise MediaError(f"{uri}: a PDF is a document of pages; address one page as '{uri}#page=N' (from 1)")
    if modality not in tags:
        raise MediaError(
            f"{uri}: cannot tell whether this is an image, audio or video from its extension; "
            "pass the modality explicitly"
        )
    return tags[modality](uri)



def _read_source(item: MediaItem, allow_fetch: bool, fetch_policy: FetchPolicy | None = None) -> str | bytes:
    """A local path, or the bytes of an in-memory / base64 / fetched source (fetched within
    ``fetch_policy``, see :mod:`modalbridge.media.fetch`)."""
    source = item.source
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise MediaError(f"{item.describe()}: no data (0 bytes)")
        return bytes(source)
    if isinstance(source, BytesIO):
        return source.getvalue()
    if isinstance(source, str):
        if source.startswith("data:"):
            try:
                return type(item).from_base64(source).source
            except ValueError as exc:
                raise MediaError(f"{_describe_source(source)}: {exc}") from None
        if is_url(source):
            if not allow_fetch:
                raise MediaError(
                    f"{source}: fetching URLs is off; build the model with allow_fetch=True to fetch it"
                )
            return fetch_url(source, fetch_policy)
        scheme = _URL_SCHEME.match(source)
        if scheme and len(scheme.group(1)) > 1:  # one letter is a Windows drive (C:\...)
            if scheme.group(1).lower() == "file":
                raise MediaError(
                    f"{source}: file:// URLs are not read; pass the local path itself, e.g. "
                    f"{type(item).__name__}({urllib.parse.unquote(urllib.parse.urlsplit(source).path)!r})"
                )
            raise MediaError(f"{source}: only http and https URLs can be fetched, not {scheme.group(1)}://")
        if os.path.isdir(source):
            raise MediaError(f"{source}: is a directory, not a file")
        if not os.path.isfile(source):
            raise MediaError(f"{source}: no such file")
        return source
    raise MediaError(f"{_describe_source(source)}: not a {item.modality} source this library can read")


T = TypeVar("T")
R = TypeVar("R")


def map_parallel(function: Callable[[T], R], values: Sequence[T], max_workers: int = 8) -> list[R]:
    """``[function(v) for v in values]`` on a thread pool (decoders release the GIL); order kept, and the
    first exception is raised as is."""
    if len(values) <= 1 or max_workers <= 1:
        return [function(value) for value in values]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(values))) as pool:
        return list(pool.map(function, values))
