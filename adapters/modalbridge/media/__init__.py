"""Decoding of tagged media into what sentence-transformers' processors take.

Images follow ``transformers.image_utils.load_image`` (EXIF orientation applied, RGB); audio follows
``transformers.audio_utils.load_audio(backend="soundfile")`` (mono by averaging, soxr "HQ" resampling,
length ``ceil(n * rate / source_rate)``), so decoding here gives the same arrays as sentence-transformers'
own loaders. Video paths are left to the model's video processor (torchcodec) when it can decode them,
else decoded with PyAV together with the metadata the processor needs to sample frames itself.

http(s) URLs are fetched only when the caller allows it. Every failure is a :class:`MediaError` that
names the source and the reason.

Each modality has its own module (``image``, ``audio``, ``video``; ``pdf`` renders PDF pages as images);
``common`` holds what they share, ``fetch`` the opt-in, bounded network access, ``checks`` the checks of
in-memory arrays. Everything public is importable from ``modalbridge.media``.
"""

from modalbridge.media.audio import decode_audio, load_audio, read_audio
from modalbridge.media.common import (
    AUDIO_EXTENSIONS,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    MediaError,
    map_parallel,
    modality_from_extension,
    tag_uri,
)
from modalbridge.media.checks import check_frames, check_image_array, check_sampling_rate, check_waveform
from modalbridge.media.fetch import FETCH_MAX_BYTES, FETCH_TIMEOUT_S, FetchPolicy, classify_address, fetch_url
from modalbridge.media.image import decode_image
from modalbridge.media.pdf import (
    DEFAULT_PDF_DPI,
    PageResolution,
    PdfPages,
    is_pdf_page,
    page_count,
    pdf_pages,
    render_page,
)
from modalbridge.media.video import (
    decode_video,
    read_video,
    sample_video_frames,
    torchcodec_decodes_video,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "DEFAULT_PDF_DPI",
    "FETCH_MAX_BYTES",
    "FETCH_TIMEOUT_S",
    "FetchPolicy",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "MediaError",
    "PageResolution",
    "PdfPages",
    "check_frames",
    "check_image_array",
    "check_sampling_rate",
    "check_waveform",
    "classify_address",
    "decode_audio",
    "load_audio",
    "decode_image",
    "decode_video",
    "fetch_url",
    "is_pdf_page",
    "page_count",
    "pdf_pages",
    "map_parallel",
    "modality_from_extension",
    "read_audio",
    "read_video",
    "render_page",
    "sample_video_frames",
    "tag_uri",
    "torchcodec_decodes_video",
]
