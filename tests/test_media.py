"""Media decoding matches transformers' own loaders; failures name the source."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImageModule
from transformers.audio_utils import load_audio
from transformers.image_utils import load_image

from modalbridge import Audio, Image, MediaError, Video
from modalbridge.media import (
    decode_audio,
    decode_image,
    map_parallel,
    modality_from_extension,
    sample_video_frames,
    tag_uri,
)


def test_images_decode_like_transformers(image_paths):
    for path in image_paths:
        ours = decode_image(Image(path))
        assert ours.mode == "RGB"
        assert np.array_equal(np.asarray(ours), np.asarray(load_image(path)))


def test_exif_orientation_is_applied(tmp_path):
    image = PILImageModule.new("RGB", (40, 20), (255, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert decode_image(Image(str(tmp_path / "rotated.jpg"))).size == (20, 40)


def test_audio_decodes_like_transformers_own_choice_of_backend(audio_paths):
    # backend="auto" is what sentence-transformers gets: torchcodec here (tests/test_audio_backends.py
    # covers a process without it)
    for path in audio_paths:
        for rate in (16_000, 48_000):
            ours = decode_audio(Audio(path), rate)
            np.testing.assert_array_equal(ours, load_audio(path, sampling_rate=rate))


def test_stereo_waveforms_are_averaged():
    left = np.ones(100, dtype=np.float32)
    stereo = np.stack([left, -left])  # (channels, samples)
    assert np.allclose(decode_audio(Audio(stereo, sampling_rate=16_000), 16_000), 0)
    assert np.allclose(decode_audio(Audio(stereo.T, sampling_rate=16_000), 16_000), 0)


def test_bad_sources_name_themselves(tmp_path):
    with pytest.raises(MediaError, match=f"{tmp_path}/none.ogg: no such file"):
        decode_audio(Audio(str(tmp_path / "none.ogg")), 16_000)
    (tmp_path / "noise.ogg").write_bytes(b"\x00" * 64)
    with pytest.raises(MediaError, match=r"noise.ogg: cannot decode audio"):
        decode_audio(Audio(str(tmp_path / "noise.ogg")), 16_000)
    with pytest.raises(MediaError, match="must be a non-empty 1-D or 2-D array"):
        decode_audio(Audio(np.zeros((2, 2, 2)), sampling_rate=8000), 16_000)
    with pytest.raises(MediaError, match=r"an image array must have 3 dimensions"):
        decode_image(Image(np.zeros((4, 4))))
    with pytest.raises(MediaError, match="a video needs at least 2 frames, got 1"):
        sample_video_frames(Video(np.zeros((1, 4, 4, 3), dtype=np.uint8)), 4)


def test_video_frames_are_sampled_evenly(video_path):
    frames = sample_video_frames(Video(video_path), 3)
    assert len(frames) == 3 and frames[0].ndim == 3 and frames[0].dtype == np.uint8
    array = np.arange(10 * 2 * 2 * 3, dtype=np.uint8).reshape(10, 2, 2, 3)
    picked = sample_video_frames(Video(array), 4)
    assert [int(f[0, 0, 0]) for f in picked] == [int(array[i, 0, 0, 0]) for i in (0, 3, 6, 9)]


def test_uris_are_tagged_by_extension_only_when_handed_as_media():
    assert modality_from_extension("a/b/photo.JPG") == "image"
    assert modality_from_extension("clip.ogg") == "audio"
    assert modality_from_extension("https://x.invalid/v.mp4?token=1") == "video"
    assert modality_from_extension("notes.txt") is None
    assert isinstance(tag_uri("x.webm"), Video)
    assert isinstance(tag_uri("x.bin", modality="audio"), Audio)
    with pytest.raises(MediaError, match="notes.txt: cannot tell whether this is an image, audio or video"):
        tag_uri("notes.txt")


def test_map_parallel_keeps_order_and_raises():
    assert map_parallel(lambda x: x * 2, list(range(50)), max_workers=4) == [x * 2 for x in range(50)]

    def fail_on_7(x):
        if x == 7:
            raise MediaError("seven")
        return x

    with pytest.raises(MediaError, match="seven"):
        map_parallel(fail_on_7, list(range(10)), max_workers=4)
