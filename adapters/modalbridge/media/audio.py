"""Audio: decoded exactly as transformers' ``load_audio`` (what sentence-transformers calls on a path)
decodes it on this machine: with torchcodec when transformers would use it (installed, loadable, FFmpeg
found), else with soundfile (mono by averaging, soxr "HQ" resampling, length ``ceil(n * rate / source_rate)``).
The two backends differ slightly (about 1e-4 after resampling), so following transformers' own choice is
what keeps embeddings equal to direct ``encode_document([path])`` calls."""

from __future__ import annotations

import math
from io import BytesIO
from typing import Any

import numpy as np

from modalbridge.items import Audio
from modalbridge.media.checks import as_numpy, check_numeric, check_sampling_rate, check_waveform
from modalbridge.media.common import MediaError, _read_source


# Source audio read past the samples a model uses, so that resampling the prefix gives exactly the samples
# resampling the whole clip gives there (soxr's and FFmpeg's filters look a few milliseconds ahead).
_PREFIX_MARGIN_S = 1.0


def _source_frames(max_samples: int | None, source_rate: int, target_rate: int) -> int | None:
    """How many source frames to read for the first ``max_samples`` at ``target_rate`` (``None``: all)."""
    if max_samples is None:
        return None
    return math.ceil(max_samples * source_rate / target_rate) + math.ceil(_PREFIX_MARGIN_S * source_rate)


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


def read_audio(
    item: Audio, allow_fetch: bool = False, fetch_policy: Any = None, max_seconds: float | None = None
) -> tuple[np.ndarray, int]:
    """A mono float32 waveform at the source's own sampling rate, and that rate, from any :class:`Audio`
    source (for data loaders that decode before the model is known; :func:`decode_audio` resamples).
    Waveforms are checked (numbers, a positive integer sampling rate, non-empty, finite), and so is
    what a file decodes to (a float WAV can hold NaN). ``max_seconds``: read a file only that far."""
    source = item.source
    if hasattr(source, "shape"):
        array = as_numpy(source)
        rate = check_sampling_rate(item.sampling_rate, item.describe())
        if array.ndim not in (1, 2):
            raise MediaError(f"{item.describe()}: a waveform must be a non-empty 1-D or 2-D array")
        check_numeric(array, "the waveform", item.describe())
        waveform = np.asarray(array, dtype=np.float32)
        if waveform.ndim == 2:  # (channels, samples) or (samples, channels): average the shorter axis
            waveform = waveform.mean(axis=0 if waveform.shape[0] <= waveform.shape[1] else 1)
        check_waveform(np.asarray(array), item.describe())
        return waveform, rate
    data = _read_source(item, allow_fetch, fetch_policy)
    try:
        import soundfile as sf
    except ImportError as exc:
        raise MediaError("decoding audio needs soundfile: pip install 'modalbridge[audio]'") from exc
    try:
        with sf.SoundFile(BytesIO(data) if isinstance(data, bytes) else data) as f:
            source_rate = f.samplerate
            frames = -1 if max_seconds is None else math.ceil(max_seconds * source_rate)
            waveform = f.read(frames=frames, dtype="float32", always_2d=True).mean(axis=1)
    except Exception as exc:
        raise MediaError(f"{item.describe()}: cannot decode audio ({exc})") from None
    check_waveform(waveform, item.describe())
    return waveform, check_sampling_rate(source_rate, item.describe())


def load_audio(item: Audio, allow_fetch: bool = False, fetch_policy: Any = None) -> Audio:
    """The sound as a tagged waveform at its own rate (what a data loader hands over), keeping the file's
    bytes in ``encoded`` so that embedding it equals embedding the file whichever backend is used."""
    if hasattr(item.source, "shape"):
        return item
    data = _read_source(item, allow_fetch, fetch_policy)  # fetched (at most) once
    if isinstance(data, str):  # a local path: errors name it
        waveform, rate = read_audio(item, allow_fetch, fetch_policy)
        with open(data, "rb") as f:
            data = f.read()
    else:
        waveform, rate = read_audio(Audio(data), allow_fetch, fetch_policy)
    return Audio(waveform, sampling_rate=rate, encoded=data)


def torchcodec_decodes_audio() -> bool:
    """Whether transformers' ``load_audio(backend="auto")`` decodes audio files with torchcodec here (its
    own test: torchcodec >= 0.3 that loads and found FFmpeg); otherwise it uses soundfile + soxr."""
    try:
        from transformers.utils.import_utils import is_torchcodec_greater_or_equal, is_torchcodec_usable
    except ImportError:  # pragma: no cover - an older transformers: soundfile
        return False
    return bool(is_torchcodec_greater_or_equal("0.3.0") and is_torchcodec_usable(decode="audio"))


def decode_audio(
    item: Audio,
    sampling_rate: int,
    allow_fetch: bool = False,
    fetch_policy: Any = None,
    max_samples: int | None = None,
) -> np.ndarray:
    """A mono float32 waveform at ``sampling_rate`` from any :class:`Audio` source, decoded by the backend
    transformers would pick for a file (see the module docstring); arrays are resampled with soxr.

    ``max_samples``: only the first ``max_samples`` are wanted (a model that reads a fixed window), so a
    long file is decoded only that far, plus a margin that makes the result equal the first
    ``max_samples`` of decoding it whole (bit-identical on both backends; tested on 5-minute files)."""
    encoded = getattr(item, "encoded", None)
    from_file = not hasattr(item.source, "shape") or (encoded is not None and item.sampling_rate != sampling_rate)
    if not from_file or not torchcodec_decodes_audio():
        if hasattr(item.source, "shape"):
            waveform, source_rate = read_audio(item, allow_fetch, fetch_policy)
            waveform = waveform[: _source_frames(max_samples, source_rate, sampling_rate)]
        else:
            seconds = None if max_samples is None else max_samples / sampling_rate + _PREFIX_MARGIN_S
            waveform, source_rate = read_audio(item, allow_fetch, fetch_policy, max_seconds=seconds)
        return _resample(waveform, source_rate, sampling_rate)[:max_samples]
    data = _read_source(item, allow_fetch, fetch_policy) if encoded is None else encoded
    try:
        from torchcodec.decoders import AudioDecoder

        # as transformers.audio_utils.load_audio: resampled and mixed down to one channel by torchcodec
        decoder = AudioDecoder(data, sample_rate=sampling_rate, num_channels=1)
        if max_samples is None:
            samples = decoder.get_all_samples()
        else:
            samples = decoder.get_samples_played_in_range(0.0, max_samples / sampling_rate + _PREFIX_MARGIN_S)
        waveform = samples.data[0].numpy()[:max_samples]
    except Exception as exc:
        raise MediaError(f"{item.describe()}: cannot decode audio ({exc})") from None
    check_waveform(waveform, item.describe())
    return np.ascontiguousarray(waveform, dtype=np.float32)
