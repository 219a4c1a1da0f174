"""Frame-selective video decoding: the sampled frames of a file equal the same frames of a full decode,
and sampling a long clip does not hold the whole clip (peak memory measured in a subprocess)."""

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from modalbridge import Video
from modalbridge.media.video import _pyav_decode, sample_indices, sample_video_frames


def _write_clip(path: Path, frames: int, size=(120, 160), keyframe_every: int = 30, preset: str = "ultrafast") -> str:
    """A moving random texture, H.264 at 30 fps with a keyframe every second (as cameras write)."""
    import av

    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "23", "preset": preset, "threads": "1", "g": str(keyframe_every)}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(base, 3 * i, axis=1), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    return _write_clip(folder / "short.mp4", 45), _write_clip(folder / "long.mp4", 450, size=(240, 320))


def test_sampled_frames_equal_the_same_frames_of_a_full_decode(clips):
    for path in clips:
        full, _ = _pyav_decode(path, path)
        sampled = sample_video_frames(Video(path), 8)
        indices = sample_indices(len(full), 8)
        assert len(sampled) == 8 and indices[0] == 0 and indices[-1] == len(full) - 1
        for frame, index in zip(sampled, indices):
            np.testing.assert_array_equal(frame, full[index])
    from_bytes = sample_video_frames(Video(Path(clips[1]).read_bytes()), 8)
    np.testing.assert_array_equal(np.stack(from_bytes), np.stack(sample_video_frames(Video(clips[1]), 8)))
    assert len(sample_video_frames(Video(clips[0]), 100)) == 45  # never more frames than the clip has


_PEAK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from modalbridge.testing import peak_rss_mb
    from modalbridge import Video
    from modalbridge.media.video import sample_video_frames
    peaks = []
    for path in sys.argv[1:]:
        frames = sample_video_frames(Video(path), 8)
        assert len(frames) == 8
        peaks.append(peak_rss_mb())
    print(json.dumps(peaks))
    """
)


def test_sampling_a_long_clip_does_not_hold_it(clips):
    # The long clip is 450 frames of 320x240: 104 MB decoded whole; 8 frames are 1.8 MB.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "adapters")}
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, *clips], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    short, long = json.loads(out.stdout.strip().splitlines()[-1])
    assert long <= short + 20, f"peak RSS {short:.0f} MB after the short clip, {long:.0f} MB after the long one"


def _decoded_frames(path: str, caplog) -> tuple[int, int]:
    """Frames decoded to sample 8, and the clip's length, from the sampler's DEBUG record."""
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="modalbridge.media.video"):
        assert len(sample_video_frames(Video(path), 8)) == 8
    (record,) = [r for r in caplog.records if r.name == "modalbridge.media.video"]
    _, sampled, total, decoded, _, _ = record.args
    assert sampled == 8
    return decoded, total


def test_sampling_work_follows_the_samples_not_the_length(tmp_path, caplog):
    """8 frames of a 40 s clip (a keyframe a second, B-frames) decode at most 1.5x the frames that 8 frames
    of a 4 s clip do; with a 250-frame keyframe interval, fewer frames than the clip has."""
    size, fps = (48, 64), 30
    short = _write_clip(tmp_path / "4s.mp4", 4 * fps, size=size, keyframe_every=fps, preset="veryfast")
    long = _write_clip(tmp_path / "40s.mp4", 40 * fps, size=size, keyframe_every=fps, preset="veryfast")
    long_gop = _write_clip(tmp_path / "40s-gop250.mp4", 40 * fps, size=size, keyframe_every=250, preset="veryfast")
    (short_work, short_total), (long_work, long_total) = _decoded_frames(short, caplog), _decoded_frames(long, caplog)
    assert (short_total, long_total) == (120, 1200)
    assert long_work <= 1.5 * short_work, (short_work, long_work)
    gop_work, gop_total = _decoded_frames(long_gop, caplog)
    assert gop_work < gop_total, (gop_work, gop_total)
