"""A Chroma ``data_loader`` for image, audio, video and PDF page URIs."""

from __future__ import annotations

from typing import Any, Literal, Sequence

import numpy as np

from modalbridge.items import Audio, Image, PdfPage, Video
from modalbridge.media import (
    MediaError,
    decode_image,
    map_parallel,
    load_audio,
    read_video,
    tag_uri,
)


class LoadedMedia(list):
    """What :class:`MultimodalDataLoader` returns: a plain list of loaded items (``None`` for a record
    without a URI), with the ``uris`` they came from, so embedding errors can name the URI."""

    def __init__(self, items: Sequence[Any], uris: Sequence[str | None]) -> None:
        super().__init__(items)
        self.uris = list(uris)


class MultimodalDataLoader:
    """A Chroma ``data_loader`` for image, audio and video files (or URLs, with ``allow_fetch=True``).

    Each URI is tagged by its extension (or as ``modality``) with :func:`modalbridge.media.tag_uri` and
    decoded in parallel:

    * image -> a ``numpy`` (H, W, 3) uint8 RGB array (EXIF-oriented): Chroma's own image type, as
      ``add(images=...)`` and Chroma's ``ImageLoader`` use;
    * audio -> ``Audio(waveform, sampling_rate=rate)``: mono float32 at the file's own rate (the
      embedding function resamples to the model's rate);
    * video -> the tag ``Video(uri)`` itself: a video is never decoded whole unless asked, since a
      40 s clip is ~1,200 frames (~800 MB at 640x360) while a model uses a few of them (the model's
      processor, or ``video_frames`` on image models, decodes only the frames it samples; an unreadable
      file is then reported when it is embedded). With ``decode_video=True``: ``Video(frames, fps=fps)``
      with all (T, H, W, 3) uint8 frames;
    * a PDF page, ``file.pdf#page=N`` (1-based) -> the tag ``PdfPage(file, page=N)``: the embedding
      function (or reranker) renders it at the resolution its model looks at, one batch at a time. A
      missing, encrypted, corrupt or empty PDF, or a page out of range, is reported when it is embedded,
      naming the file and page. :func:`modalbridge.chroma.add_pdf` adds every page of a file.

    ``None`` URIs (records added without one) load as ``None``. An unreadable or missing URI raises
    :class:`~modalbridge.MediaError` naming it. ``include=["data"]`` returns these same values.
    """

    def __init__(
        self,
        modality: Literal["image", "audio", "video"] | None = None,
        *,
        max_workers: int = 8,
        allow_fetch: bool = False,
        decode_video: bool = False,
        fetch_policy: FetchPolicy | None = None,
    ) -> None:
        if modality not in (None, "image", "audio", "video"):
            raise ValueError(f"modality must be 'image', 'audio', 'video' or None, got {modality!r}")
        self.modality = modality
        self.max_workers = max_workers
        self.allow_fetch = allow_fetch
        self.decode_video = decode_video
        self.fetch_policy = fetch_policy
        """Bounds of fetching (deadline, byte cap, hosts, private addresses); ``None``: the defaults."""

    def __repr__(self) -> str:
        return f"MultimodalDataLoader(modality={self.modality!r}, decode_video={self.decode_video})"

    def __call__(self, uris: Sequence[str | None]) -> LoadedMedia:
        if isinstance(uris, str) or not isinstance(uris, Sequence):
            raise TypeError(f"expected a list of URIs, got {type(uris).__name__}")
        indexed = list(enumerate(uris))
        return LoadedMedia(map_parallel(self._load, indexed, self.max_workers), uris)

    def _load(self, indexed: tuple[int, str | None]) -> Any:
        index, uri = indexed
        if uri is None:
            return None
        if not isinstance(uri, str):
            raise TypeError(f"uri {index}: expected a str, got {type(uri).__name__}")
        try:
            item = tag_uri(uri, self.modality)
            if isinstance(item, PdfPage):
                return item  # rendered for the model when embedded: the loader does not know its resolution
            if isinstance(item, Image):
                return np.array(decode_image(item, self.allow_fetch, self.fetch_policy))  # writable: torch warns on read-only arrays
            if isinstance(item, Audio):
                return load_audio(item, self.allow_fetch, self.fetch_policy)  # embeds exactly like the file
            if not self.decode_video:
                return item
            frames, fps = read_video(item, self.allow_fetch, self.fetch_policy)
            return Video(frames, fps=fps)
        except MediaError as exc:
            raise MediaError(f"uri {index}: {exc}") from None
