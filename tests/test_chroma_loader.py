"""Unit tests of the Chroma data loader: what it returns per modality, errors naming the URI, and that
what it returns embeds exactly like the core embeds the files themselves."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

import chromadb  # noqa: F401
import soundfile as sf

from modalbridge import Audio, Embedder, Image, MediaError, Video  # noqa: E402
from modalbridge.chroma import LoadedMedia, MultimodalDataLoader, MultimodalEmbeddingFunction  # noqa: E402
from modalbridge.media import decode_image, read_audio  # noqa: E402


@pytest.fixture(scope="module")
def short_clips(audio_paths, tmp_path_factory) -> list[str]:
    """Two clips under 1 s (the tiny CLAP crops longer ones at random offsets): the first 0.6 s of a real
    22.05 kHz recording as WAV, and a 16 kHz FLAC tone."""
    folder = tmp_path_factory.mktemp("short_audio")
    waveform, rate = sf.read(audio_paths[1], dtype="float32", frames=int(0.6 * 22_050))
    sf.write(folder / "robin.wav", waveform, rate)
    from modalbridge.testing import make_test_tone

    sf.write(folder / "tone.flac", make_test_tone(0.5, 16_000), 16_000)
    return [str(folder / "robin.wav"), str(folder / "tone.flac")]


def test_images_load_as_chroma_image_arrays(image_paths):
    loaded = MultimodalDataLoader()(image_paths[:3])
    assert isinstance(loaded, LoadedMedia) and isinstance(loaded, list) and loaded.uris == image_paths[:3]
    for array, path in zip(loaded, image_paths):
        assert isinstance(array, np.ndarray) and array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3
        assert array.flags.writeable
        np.testing.assert_array_equal(array, np.asarray(decode_image(Image(path))))


def test_audio_loads_as_a_tagged_waveform_at_its_own_rate(audio_paths):
    (loaded,) = MultimodalDataLoader()([audio_paths[0]])
    waveform, rate = read_audio(Audio(audio_paths[0]))
    assert isinstance(loaded, Audio) and loaded.sampling_rate == rate == 22_050
    np.testing.assert_array_equal(loaded.source, waveform)


def test_video_loads_as_a_reference_or_as_frames_when_asked(video_path):
    assert MultimodalDataLoader()([video_path]) == [Video(video_path)]  # never decoded whole unless asked
    (loaded,) = MultimodalDataLoader(decode_video=True)([video_path])
    assert isinstance(loaded, Video) and loaded.fps == 4.0
    assert loaded.source.shape == (8, 32, 32, 3) and loaded.source.dtype == np.uint8


def test_records_without_uri_load_as_none(image_paths):
    assert MultimodalDataLoader()([None, image_paths[0], None])[::2] == [None, None]


def test_fixed_modality_for_files_without_a_telling_extension(image_paths, tmp_path):
    blob = tmp_path / "photo.blob"
    shutil.copy(image_paths[0], blob)
    with pytest.raises(MediaError, match=r"uri 0: .*photo\.blob: cannot tell whether this is an image, audio or video"):
        MultimodalDataLoader()([str(blob)])
    (array,) = MultimodalDataLoader(modality="image")([str(blob)])
    np.testing.assert_array_equal(array, np.asarray(decode_image(Image(image_paths[0]))))
    with pytest.raises(ValueError, match="modality must be"):
        MultimodalDataLoader(modality="text")


def test_unreadable_uris_are_named(image_paths, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_text("not a jpeg")
    loader = MultimodalDataLoader()
    with pytest.raises(MediaError, match=rf"uri 1: {re.escape(str(tmp_path / 'missing.png'))}: no such file"):
        loader([image_paths[0], str(tmp_path / "missing.png")])
    with pytest.raises(MediaError, match=rf"uri 0: {re.escape(str(broken))}: cannot decode image \(cannot identify image file"):
        loader([str(broken)])
    with pytest.raises(MediaError, match=r"uri 0: https://example\.com/a\.jpg: fetching URLs is off"):
        loader(["https://example.com/a.jpg"])
    with pytest.raises(TypeError, match="uri 0: expected a str, got int"):
        loader([3])
    with pytest.raises(TypeError, match="expected a list of URIs, got str"):
        loader(image_paths[0])


def test_loaded_media_embed_like_the_files(tiny_clap_path, tiny_qwen3vl_path, short_clips, video_path, image_paths):
    clap = MultimodalEmbeddingFunction(tiny_clap_path)
    loaded = MultimodalDataLoader()(short_clips)
    np.testing.assert_allclose(
        np.stack(clap(loaded)), Embedder(tiny_clap_path).embed_documents([Audio(p) for p in short_clips]), atol=1e-6
    )
    qwen = MultimodalEmbeddingFunction(tiny_qwen3vl_path)
    uris = [image_paths[0], video_path]
    expected = Embedder(tiny_qwen3vl_path).embed_queries([Image(image_paths[0]), Video(video_path)])
    for loader in (MultimodalDataLoader(), MultimodalDataLoader(decode_video=True)):
        np.testing.assert_allclose(np.stack(qwen.embed_query(loader(uris))), expected, atol=1e-6)


def test_wrong_modality_names_the_uri(tiny_clip_path, short_clips, image_paths):
    ef = MultimodalEmbeddingFunction(tiny_clip_path)
    loaded = MultimodalDataLoader()([image_paths[0], short_clips[0]])
    with pytest.raises(
        ValueError,
        match=rf"item 1 \(uri '{re.escape(short_clips[0])}'\): Audio\(.*\) is audio, which this model does not support; "
        "it supports: text, image",
    ):
        ef(loaded)
    with pytest.raises(TypeError, match=r"item 0: None is not an input"):
        ef(MultimodalDataLoader()([None]))
