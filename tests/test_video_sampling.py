"""Frame-selective video decoding: the sampled frames of a file equal the same frames of a full decode,
and sampling a long clip does not hold the whole clip (peak memory measured in a subprocess)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from modalbridge import Video
from modalbridge.media.video import _pyav_decode, sample_indices, sample_video_frames


def _write_clip(path: Path, frames: int, size=(120, 160), keyframe_every: int = 30) -> str:
    """A moving random texture, H.264 at 30 fps with a keyframe every second (as cameras write)."""
    import av

    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "23", "preset": "ultrafast", "threads": "1", "g": str(keyframe_every)}
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
    import json, resource, sys
    from modalbridge import Video
    from modalbridge.media.video import sample_video_frames
    peaks = []
    for path in sys.argv[1:]:
        frames = sample_video_frames(Video(path), 8)
        assert len(frames) == 8
        peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
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
    assert long <= short + 20 * 1024, f"peak RSS {short / 1024:.0f} MB after the short clip, {long / 1024:.0f} MB after the long one"
