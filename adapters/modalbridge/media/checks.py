"""Checks on in-memory media (image arrays, waveforms, video frames) before any compute.

Each check raises :class:`MediaError` with the reason, prefixed by what the caller passes as ``describe``
(the decoders prefix the item's description; :class:`~modalbridge.inputs.Preparer` adds its index), so a
bad array fails alone and by name instead of deep inside a processor, or worse, as a NaN vector::

    check_image_array(np.zeros((8, 8, 2), np.uint8), "an array of shape (8, 8, 2)")
    # MediaError: an array of shape (8, 8, 2): an image array needs 1, 3 or 4 channels on its first or
    #             last axis (H, W, C or C, H, W), got shape (8, 8, 2)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modalbridge.media.errors import MediaError

CHANNEL_COUNTS = (1, 3, 4)
"""Channels an image (or video frame) may have: grayscale, RGB, RGBA."""

MIN_VIDEO_FRAMES = 2
"""Video models sample frames in pairs (Qwen3-VL's temporal patch is 2 frames): one frame is no video."""


def as_numpy(source: Any) -> np.ndarray:
    """A numpy view (or CPU copy) of an array or tensor, for checking only; the source itself is passed on."""
    if hasattr(source, "detach"):
        source = source.detach().cpu()
        if str(source.dtype) == "torch.bfloat16":  # numpy has no bfloat16
            source = source.float()
        return source.numpy()
    return np.asarray(source)


def check_numeric(array: np.ndarray, what: str, describe: str) -> None:
    """Integer or floating values only (not object, string, complex or bool arrays); no zero-size axis."""
    if array.dtype.kind not in "uif":
        raise MediaError(
            f"{describe}: {what} of dtype {array.dtype} cannot be read as numbers; "
            "use uint8 (0-255) or float32 values"
        )
    if array.size == 0:
        raise MediaError(f"{describe}: {what} is empty (shape {tuple(array.shape)})")


def check_finite(array: np.ndarray, what: str, describe: str) -> None:
    """No NaN or infinity (they would give a NaN embedding that every store then rejects or mis-ranks)."""
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        value = array[tuple(bad)]
        raise MediaError(
            f"{describe}: {what} holds {int((~np.isfinite(array)).sum())} non-finite value(s) "
            f"(first: {value} at {tuple(int(i) for i in bad)})"
        )


def _has_channels(shape: tuple[int, ...]) -> bool:
    return shape[-1] in CHANNEL_COUNTS or shape[0] in CHANNEL_COUNTS


def check_image_array(source: Any, describe: str) -> None:
    """An (H, W, C) or (C, H, W) array of numbers, 1/3/4 channels, non-empty, finite."""
    array = as_numpy(source)
    if array.ndim != 3:
        raise MediaError(
            f"{describe}: an image array must have 3 dimensions (H, W, C) or (C, H, W), got shape {tuple(array.shape)}"
        )
    check_numeric(array, "the image array", describe)
    if not _has_channels(array.shape):
        raise MediaError(
            f"{describe}: an image array needs 1, 3 or 4 channels on its first or last axis (H, W, C or "
            f"C, H, W), got shape {tuple(array.shape)}"
        )
    check_finite(array, "the image array", describe)


def check_frames(frames: np.ndarray, describe: str) -> None:
    """(T, H, W, C) frames: numbers, at least :data:`MIN_VIDEO_FRAMES`, 1/3/4 channels, finite."""
    if frames.ndim != 4:
        raise MediaError(f"{describe}: video frames must be a (T, H, W, C) array or a list of images")
    check_numeric(frames, "the video frames", describe)
    if frames.shape[0] < MIN_VIDEO_FRAMES:
        raise MediaError(f"{describe}: a video needs at least {MIN_VIDEO_FRAMES} frames, got {frames.shape[0]}")
    if not _has_channels(frames.shape[1:]):
        raise MediaError(
            f"{describe}: video frames need 1, 3 or 4 channels (T, H, W, C or T, C, H, W), got shape {tuple(frames.shape)}"
        )
    check_finite(frames, "the video frames", describe)


def check_sampling_rate(rate: Any, describe: str) -> int:
    """A positive whole number of samples per second."""
    if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, float, np.integer, np.floating)):
        raise MediaError(f"{describe}: sampling_rate must be a positive integer, got {rate!r}")
    if not np.isfinite(rate) or rate <= 0 or int(rate) != rate:
        raise MediaError(f"{describe}: sampling_rate must be a positive integer, got {rate!r}")
    return int(rate)


def check_waveform(waveform: np.ndarray, describe: str) -> None:
    """A mono waveform: non-empty, finite."""
    if waveform.size == 0:
        raise MediaError(f"{describe}: the audio has no samples")
    check_finite(waveform, "the audio", describe)
