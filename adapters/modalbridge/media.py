"""Decoding of tagged media into what sentence-transformers' processors take.

Images follow ``transformers.image_utils.load_image`` (EXIF orientation applied, RGB); audio follows
``transformers.audio_utils.load_audio(backend="soundfile")`` (mono by averaging, soxr "HQ" resampling,
length ``ceil(n * rate / source_rate)``), so decoding here gives the same arrays as sentence-transformers'
own loaders. Video paths are left to the model's video processor (torchcodec) when it can decode them,
else decoded with PyAV together with the metadata the processor needs to sample frames itself.

http(s) URLs are fetched only when the caller allows it. Every failure is a :class:`MediaError` that
names the source and the reason.
"""

from __future__ import annotations

import math
import os
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from io import BytesIO
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from modalbridge.items import Audio, Image, MediaItem, Video, _describe_source, is_url

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aac", ".m4a", ".opus")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".wmv", ".flv", ".m4v")

FETCH_TIMEOUT_S = 30.0


class MediaError(ValueError):
    """A media source could not be read or decoded. The message names the source and the reason."""


def modality_from_extension(path: str) -> str | None:
    """``"image"``, ``"audio"`` or ``"video"`` from a file name's extension, or ``None`` if unknown.

    Only for callers that were handed media references explicitly (a data loader's URIs, files to index):
    plain strings passed as text are never looked at this way."""
    lower = path.lower().split("?", 1)[0]
    for modality, extensions in (("image", IMAGE_EXTENSIONS), ("audio", AUDIO_EXTENSIONS), ("video", VIDEO_EXTENSIONS)):
        if lower.endswith(extensions):
            return modality
    return None


def tag_uri(uri: str, modality: str | None = None) -> MediaItem:
    """Tag a media URI (path or URL) as Image/Audio/Video, by ``modality`` or by its extension."""
    modality = modality or modality_from_extension(uri)
    tags = {"image": Image, "audio": Audio, "video": Video}
    if modality not in tags:
        raise MediaError(
            f"{uri}: cannot tell whether this is an image, audio or video from its extension; "
            "pass the modality explicitly"
        )
    return tags[modality](uri)


def fetch_url(url: str, timeout: float = FETCH_TIMEOUT_S) -> bytes:
    """GET ``url`` and return its body. Only called when fetching was allowed."""
    request = urllib.request.Request(url, headers={"User-Agent": "modalbridge"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except Exception as exc:
        raise MediaError(f"{url}: could not fetch ({exc})") from None


def _read_source(item: MediaItem, allow_fetch: bool) -> str | bytes:
    """A local path, or the bytes of an in-memory / base64 / fetched source."""
    source = item.source
    if isinstance(source, (bytes, bytearray)):
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
            return fetch_url(source)
        if not os.path.isfile(source):
            raise MediaError(f"{source}: no such file")
        return source
    raise MediaError(f"{_describe_source(source)}: not a {item.modality} source this library can read")


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


def _resample(waveform: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resample like librosa.load / transformers' soundfile backend: soxr HQ, then pad or trim."""
    if source_rate == target_rate:
        return np.ascontiguousarray(waveform, dtype=np.float32)
    try:
        import soxr
    except ImportError as exc:
        raise MediaError("resampling audio needs soxr: pip install 'modalbridge[audio]'") from exc
    num_samples = math.ceil(len(waveform) * target_rate / source_rate)
    waveform = soxr.resample(waveform, source_rate, target_rate, quality="soxr_hq")
    waveform = np.pad(waveform, (0, max(0, num_samples - len(waveform))))[:num_samples]
    return np.ascontiguousarray(waveform, dtype=np.float32)


def read_audio(item: Audio, allow_fetch: bool = False) -> tuple[np.ndarray, int]:
    """A mono float32 waveform at the source's own sampling rate, and that rate, from any :class:`Audio`
    source (for data loaders that decode before the model is known; :func:`decode_audio` resamples)."""
    source = item.source
    if hasattr(source, "shape"):
        waveform = np.asarray(source.detach().cpu() if hasattr(source, "detach") else source, dtype=np.float32)
        if waveform.ndim == 2:  # (channels, samples) or (samples, channels): average the shorter axis
            waveform = waveform.mean(axis=0 if waveform.shape[0] <= waveform.shape[1] else 1)
        if waveform.ndim != 1 or waveform.size == 0:
            raise MediaError(f"{item.describe()}: a waveform must be a non-empty 1-D or 2-D array")
        return waveform, int(item.sampling_rate)
    data = _read_source(item, allow_fetch)
    try:
        import soundfile as sf
    except ImportError as exc:
        raise MediaError("decoding audio needs soundfile: pip install 'modalbridge[audio]'") from exc
    try:
        with sf.SoundFile(BytesIO(data) if isinstance(data, bytes) else data) as f:
            source_rate = f.samplerate
            waveform = f.read(dtype="float32", always_2d=True).mean(axis=1)
    except Exception as exc:
        raise MediaError(f"{item.describe()}: cannot decode audio ({exc})") from None
    if waveform.size == 0:
        raise MediaError(f"{item.describe()}: the audio has no samples")
    return waveform, int(source_rate)


def decode_audio(item: Audio, sampling_rate: int, allow_fetch: bool = False) -> np.ndarray:
    """A mono float32 waveform at ``sampling_rate`` from any :class:`Audio` source."""
    waveform, source_rate = read_audio(item, allow_fetch)
    return _resample(waveform, source_rate, sampling_rate)


@lru_cache(maxsize=1)
def torchcodec_decodes_video() -> bool:
    """Whether transformers' video processors can decode paths here (torchcodec with FFmpeg)."""
    try:
        from transformers.utils.import_utils import is_torchcodec_usable

        return bool(is_torchcodec_usable(decode="video"))
    except Exception:
        return False


def _pyav_decode(data: str | bytes, describe: str) -> tuple[np.ndarray, float]:
    """All frames (T, H, W, 3) uint8 and the average fps, decoded with PyAV (FFmpeg bundled in the wheel)."""
    try:
        import av
    except ImportError as exc:
        raise MediaError("decoding video needs PyAV or torchcodec: pip install 'modalbridge[video]'") from exc
    try:
        with av.open(BytesIO(data) if isinstance(data, bytes) else data) as container:
            stream = container.streams.video[0]
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
            fps = float(stream.average_rate) if stream.average_rate else 24.0
    except Exception as exc:
        raise MediaError(f"{describe}: cannot decode video ({exc})") from None
    if len(frames) < 2:
        raise MediaError(f"{describe}: a video needs at least 2 frames, got {len(frames)}")
    return np.stack(frames), fps


def _frames_array(item: Video) -> np.ndarray:
    source = item.source
    if isinstance(source, (list, tuple)):
        source = np.stack([np.asarray(frame) for frame in source])
    frames = np.asarray(source.detach().cpu() if hasattr(source, "detach") else source)
    if frames.ndim != 4:
        raise MediaError(f"{item.describe()}: video frames must be a (T, H, W, C) array or a list of images")
    if frames.shape[0] < 2:
        raise MediaError(f"{item.describe()}: a video needs at least 2 frames, got {frames.shape[0]}")
    return frames


def _is_frames(source: Any) -> bool:
    return hasattr(source, "shape") or isinstance(source, (list, tuple))


def _metadata(num_frames: int, fps: float | None) -> dict[str, Any]:
    return {
        "fps": fps,
        "total_num_frames": num_frames,
        "duration": num_frames / fps if fps else None,
        "frames_indices": list(range(num_frames)),
    }


def decode_video(item: Video, allow_fetch: bool = False, in_pair: bool = False) -> Any:
    """The sentence-transformers input for a video.

    Paths go to the model's processor as ``{"video": path}`` (it decodes only the frames it samples) when
    torchcodec can decode video; otherwise, and for bytes and URLs, PyAV decodes the frames and the result
    carries the metadata the processor needs to sample them itself. Inside reranker pairs
    sentence-transformers takes frames only as ``{"video": frames}`` (24 fps assumed)."""
    if _is_frames(item.source):
        frames = _frames_array(item)
        if item.fps is None or in_pair:
            return {"video": frames}
        return {"video": {"array": frames, "video_metadata": _metadata(len(frames), item.fps)}}
    data = _read_source(item, allow_fetch)
    if isinstance(data, str) and torchcodec_decodes_video():
        return {"video": data}
    frames, fps = _pyav_decode(data, item.describe())
    if in_pair:
        return {"video": frames}
    return {"video": {"array": frames, "video_metadata": _metadata(len(frames), fps)}}


def sample_video_frames(item: Video, num_frames: int, allow_fetch: bool = False) -> list[Any]:
    """``num_frames`` evenly spaced frames (uint8 HWC arrays), for image-only models that embed a video
    as the mean of its frames."""
    if _is_frames(item.source):
        frames = _frames_array(item)
    else:
        frames, _ = _pyav_decode(_read_source(item, allow_fetch), item.describe())
    indices = np.linspace(0, len(frames) - 1, num=min(num_frames, len(frames))).round().astype(int)
    return [np.ascontiguousarray(frames[i]) for i in indices]


def read_video(item: Video, allow_fetch: bool = False) -> tuple[np.ndarray, float | None]:
    """All frames of any :class:`Video` source as a (T, H, W, 3) uint8 array, and its fps (``item.fps``
    for frame sources, which may be ``None``), for data loaders that hand decoded videos back."""
    if _is_frames(item.source):
        return _frames_array(item), item.fps
    return _pyav_decode(_read_source(item, allow_fetch), item.describe())

T = TypeVar("T")
R = TypeVar("R")


def map_parallel(function: Callable[[T], R], values: Sequence[T], max_workers: int = 8) -> list[R]:
    """``[function(v) for v in values]`` on a thread pool (decoders release the GIL); order kept, and the
    first exception is raised as is."""
    if len(values) <= 1 or max_workers <= 1:
        return [function(value) for value in values]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(values))) as pool:
        return list(pool.map(function, values))
