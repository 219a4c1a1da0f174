"""Long audio: a model that reads a fixed window (CLAP's ``rand_trunc``, cut to the first window by the
core) gets its samples from a decode of only that much of the file, equal to the first samples of a full
decode on both backends, and a ten-minute file costs no more memory than a one-second one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from modalbridge import Audio
from modalbridge.media import audio as audio_module
from modalbridge.media.audio import decode_audio

WINDOW = 16_000  # one second at the tiny CLAP's rate


def _signal(seconds: float, rate: int, channels: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))
    return tone if channels == 1 else np.stack([tone, 0.5 * tone], axis=1)


@pytest.fixture(scope="module")
def long_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("long-audio")
    paths = []
    for name, rate, channels, subtype in (("long.wav", 44_100, 2, "FLOAT"), ("long.ogg", 48_000, 1, None)):
        path = folder / name
        with sf.SoundFile(path, "w", rate, channels, subtype=subtype) as f:
            data = _signal(40, rate, channels).astype(np.float32)
            for start in range(0, len(data), rate):  # written a second at a time (libsndfile's Vorbis encoder)
                f.write(data[start : start + rate])
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("backend", ["torchcodec", "soundfile"])
def test_the_window_decoded_alone_equals_the_start_of_a_full_decode(long_files, backend, monkeypatch):
    if backend == "soundfile":  # transformers' choice where torchcodec cannot load
        monkeypatch.setattr(audio_module, "torchcodec_decodes_audio", lambda: False)
    else:
        assert audio_module.torchcodec_decodes_audio()
    for path in long_files:
        for rate in (16_000, 48_000):
            full = decode_audio(Audio(path), rate)
            for window in (WINDOW, 3 * rate + 7):
                head = decode_audio(Audio(path), rate, max_samples=window)
                assert len(head) == window
                np.testing.assert_array_equal(head, full[:window])
        head = decode_audio(Audio(Path(path).read_bytes()), 16_000, max_samples=WINDOW)
        np.testing.assert_array_equal(head, decode_audio(Audio(path), 16_000)[:WINDOW])
    # a clip shorter than the window: all of it, as before
    short = decode_audio(Audio(long_files[0]), 16_000, max_samples=10**9)
    np.testing.assert_array_equal(short, decode_audio(Audio(long_files[0]), 16_000))
    # waveforms: only the part resampling needs is resampled, same samples
    wave = _signal(30, 44_100, 1).astype(np.float32)
    np.testing.assert_array_equal(
        decode_audio(Audio(wave, sampling_rate=44_100), 16_000, max_samples=WINDOW),
        decode_audio(Audio(wave, sampling_rate=44_100), 16_000)[:WINDOW],
    )


_PEAK = textwrap.dedent(
    """
    import json, sys
    from modalbridge.testing import peak_rss_mb
    from modalbridge import Audio
    from modalbridge.media import audio
    if sys.argv[1] == "soundfile":
        audio.torchcodec_decodes_audio = lambda: False
    peaks = []
    for path in sys.argv[2:]:
        assert len(audio.decode_audio(Audio(path), 16000, max_samples=16000)) == 16000
        peaks.append(peak_rss_mb())
    print(json.dumps(peaks))
    """
)


@pytest.mark.parametrize("backend", ["torchcodec", "soundfile"])
def test_a_ten_minute_file_is_not_read_whole(tmp_path, backend):
    # 10 minutes of 48 kHz stereo (58 MB as 16-bit PCM): decoded whole it adds 90-130 MB to the peak.
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    sf.write(short, _signal(1, 48_000, 2), 48_000, subtype="PCM_16")
    with sf.SoundFile(long, "w", 48_000, 2, subtype="PCM_16") as f:
        minute = _signal(60, 48_000, 2)
        for _ in range(10):
            f.write(minute)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "adapters")}
    out = subprocess.run(
        [sys.executable, "-c", _PEAK, backend, str(short), str(long)], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    after_short, after_long = json.loads(out.stdout.strip().splitlines()[-1])
    assert after_long <= after_short + 20, f"{after_short:.0f} MB, then {after_long:.0f} MB"
