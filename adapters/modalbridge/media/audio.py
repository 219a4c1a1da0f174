"""Audio: decoded like ``transformers.audio_utils.load_audio(backend="soundfile")`` (mono by averaging,
soxr "HQ" resampling, length ``ceil(n * rate / source_rate)``)."""

from __future__ import annotations

import math
from io import BytesIO

import numpy as np

from modalbridge.items import Audio
from modalbridge.media.common import MediaError, _read_source


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
