"""Video: paths are left to the model's video processor (torchcodec) when it can decode them, else
decoded with PyAV together with the metadata the processor needs to sample frames itself."""

from __future__ import annotations

import logging
from functools import lru_cache
from io import BytesIO
from typing import Any

import numpy as np

from modalbridge.items import Video
from modalbridge.media.checks import MIN_VIDEO_FRAMES, as_numpy, check_frames
from modalbridge.media.common import MediaError, _read_source

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def torchcodec_decodes_video() -> bool:
    """Whether transformers' video processors can decode paths here (torchcodec with FFmpeg)."""
    try:
        from transformers.utils.import_utils import is_torchcodec_usable

        return bool(is_torchcodec_usable(decode="video"))
    except Exception:
        return False


def _import_av():
    """PyAV, or a MediaError saying how to install it."""
    try:
        import av
    except ImportError as exc:
        raise MediaError("decoding video needs PyAV or torchcodec: pip install 'modalbridge[video]'") from exc
    return av


def _pyav_decode(data: str | bytes, describe: str) -> tuple[np.ndarray, float]:
    """All frames (T, H, W, 3) uint8 and the average fps, decoded with PyAV (FFmpeg bundled in the wheel)."""
    av = _import_av()
    try:
        with av.open(BytesIO(data) if isinstance(data, bytes) else data) as container:
            stream = container.streams.video[0]
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
            fps = float(stream.average_rate) if stream.average_rate else 24.0
    except Exception as exc:
        raise MediaError(f"{describe}: cannot decode video ({exc})") from None
    if len(frames) < MIN_VIDEO_FRAMES:
        raise MediaError(f"{describe}: a video needs at least {MIN_VIDEO_FRAMES} frames, got {len(frames)}")
    return np.stack(frames), fps


def _frames_array(item: Video) -> np.ndarray:
    source = item.source
    if isinstance(source, (list, tuple)):
        try:
            source = np.stack([np.asarray(frame) for frame in source])
        except ValueError as exc:  # frames of different sizes
            raise MediaError(f"{item.describe()}: the frames cannot be stacked ({exc})") from None
    frames = as_numpy(source)
    check_frames(frames, item.describe())
    return frames


def _count_frames(path: str, describe: str) -> None:
    """Refuse a video file with fewer than :data:`MIN_VIDEO_FRAMES` frames before the processor sees it
    (it fails deep inside otherwise); the container's frame count, else a decode (small files only)."""
    try:
        import av
    except ImportError:  # torchcodec alone: its processor reports what it finds
        return
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            count = stream.frames
            if not count:
                count = sum(1 for _ in zip(range(MIN_VIDEO_FRAMES), container.decode(stream)))
    except Exception as exc:
        raise MediaError(f"{describe}: cannot decode video ({exc})") from None
    if count < MIN_VIDEO_FRAMES:
        raise MediaError(f"{describe}: a video needs at least {MIN_VIDEO_FRAMES} frames, got {count}")


def _is_frames(source: Any) -> bool:
    return hasattr(source, "shape") or isinstance(source, (list, tuple))


def _metadata(num_frames: int, fps: float | None) -> dict[str, Any]:
    return {
        "fps": fps,
        "total_num_frames": num_frames,
        "duration": num_frames / fps if fps else None,
        "frames_indices": list(range(num_frames)),
    }


def decode_video(item: Video, allow_fetch: bool = False, in_pair: bool = False, fetch_policy: Any = None) -> Any:
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
    data = _read_source(item, allow_fetch, fetch_policy)
    if isinstance(data, str) and torchcodec_decodes_video():
        _count_frames(data, item.describe())
        return {"video": data}
    frames, fps = _pyav_decode(data, item.describe())
    if in_pair:
        return {"video": frames}
    return {"video": {"array": frames, "video_metadata": _metadata(len(frames), fps)}}


def sample_indices(total: int, num_frames: int) -> list[int]:
    """The ``num_frames`` evenly spaced frame indices of a ``total``-frame video (first and last included)."""
    return np.linspace(0, total - 1, num=min(num_frames, total)).round().astype(int).tolist()


def sample_video_frames(item: Video, num_frames: int, allow_fetch: bool = False, fetch_policy: Any = None) -> list[Any]:
    """``num_frames`` evenly spaced frames (uint8 HWC arrays), for image-only models that embed a video
    as the mean of its frames. Files are not decoded whole: only the sampled frames are converted and
    kept, and the decoder seeks to the keyframe before each one (see :func:`_pyav_sample`). Memory
    follows the number of frames asked for; time follows it too, times the keyframe interval (a frame is
    decoded exactly only from the keyframe before it), never more than one pass over the clip. With a
    keyframe a second (phones, cameras, streaming encoders) 8 frames of a 40 s clip take about what 8
    frames of a 4 s clip take; with x264's default 250-frame interval about 3x, still less than a full
    decode. The cost is logged at DEBUG level."""
    if _is_frames(item.source):
        frames = _frames_array(item)
        return [np.ascontiguousarray(frames[i]) for i in sample_indices(len(frames), num_frames)]
    return _pyav_sample(_read_source(item, allow_fetch, fetch_policy), item.describe(), num_frames)


def _pyav_sample(data: str | bytes, describe: str, num_frames: int) -> list[np.ndarray]:
    """The frames :func:`sample_indices` picks, equal to the same frames of a full :func:`_pyav_decode`.

    The packets are read first without decoding (cheap): their presentation timestamps give the frame
    count and each frame's timestamp, their keyframe flags where decoding may restart. Each sampled frame
    is then decoded from the last keyframe before it (or onwards from the previous sample when no
    keyframe lies between them) and only it is converted to RGB."""
    av = _import_av()
    try:
        with av.open(BytesIO(data) if isinstance(data, bytes) else data) as container:
            stream = container.streams.video[0]
            packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.size]
            if any(pts is None for pts, _ in packets):  # no timestamps to seek by: decode in one pass
                return _sample_in_one_pass(container, stream, num_frames, describe)
            timestamps = sorted(pts for pts, _ in packets)
            if len(timestamps) < MIN_VIDEO_FRAMES:
                raise MediaError(f"{describe}: a video needs at least {MIN_VIDEO_FRAMES} frames, got {len(timestamps)}")
            keyframes = sorted(pts for pts, key in packets if key)
            wanted = [timestamps[i] for i in sample_indices(len(timestamps), num_frames)]
            converted: dict[int, np.ndarray] = {}
            decoder, position, decoded, seeks = None, None, 0, 0
            for target in sorted(set(wanted)):
                if decoder is None or any(position < key <= target for key in keyframes):
                    container.seek(target, stream=stream, backward=True, any_frame=False)  # flushes the decoder
                    decoder, seeks = container.decode(stream), seeks + 1
                frame = None
                for frame in decoder:
                    position, decoded = frame.pts, decoded + 1
                    if frame.pts is None or frame.pts >= target:
                        break
                if frame is None or frame.pts != target:  # a stream that does not seek exactly
                    container.seek(0, stream=stream, backward=True, any_frame=False)
                    return _sample_in_one_pass(container, stream, num_frames, describe)
                converted[target] = frame.to_ndarray(format="rgb24")
            # the cost of a sample: about one keyframe interval per sampled frame, at most the whole clip
            logger.debug(
                "%s: %d frames sampled of %d, %d decoded after %d seeks (%d keyframes)",
                describe, len(converted), len(timestamps), decoded, seeks, len(keyframes),
            )
    except MediaError:
        raise
    except Exception as exc:
        raise MediaError(f"{describe}: cannot decode video ({exc})") from None
    return [converted[pts] for pts in wanted]


def _sample_in_one_pass(container: Any, stream: Any, num_frames: int, describe: str) -> list[np.ndarray]:
    """Count the frames by decoding (nothing kept), then decode again converting only the sampled ones."""
    total = sum(1 for _ in container.decode(stream))
    if total < MIN_VIDEO_FRAMES:
        raise MediaError(f"{describe}: a video needs at least {MIN_VIDEO_FRAMES} frames, got {total}")
    container.seek(0, stream=stream, backward=True, any_frame=False)
    wanted = sample_indices(total, num_frames)
    picked = {}
    for index, frame in enumerate(container.decode(stream)):
        if index in wanted:
            picked[index] = frame.to_ndarray(format="rgb24")
        if index >= wanted[-1]:
            break
    return [picked[i] for i in wanted]


def read_video(item: Video, allow_fetch: bool = False, fetch_policy: Any = None) -> tuple[np.ndarray, float | None]:
    """All frames of any :class:`Video` source as a (T, H, W, 3) uint8 array, and its fps (``item.fps``
    for frame sources, which may be ``None``), for data loaders that hand decoded videos back."""
    if _is_frames(item.source):
        return _frames_array(item), item.fps
    return _pyav_decode(_read_source(item, allow_fetch, fetch_policy), item.describe())
