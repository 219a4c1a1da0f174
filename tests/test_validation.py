"""Validation before compute and after it, checked against independent references: numpy by hand for
high-bit-depth and palette images, direct sentence-transformers calls and ``quantize_embeddings`` for
vectors, real models with poisoned weights for non-finite outputs, real Chroma for indexing; and the
scoping of remote code."""

from __future__ import annotations

import math
import os
from io import BytesIO

import chromadb
import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image as PILImageModule
from sentence_transformers import SentenceTransformer
from sentence_transformers.util.quantization import quantize_embeddings

from modalbridge import Audio, Embedder, Image, MediaError, Reranker, Video, calibration_ranges, testing
from modalbridge.chroma import MultimodalEmbeddingFunction, remote_code_allowed
from modalbridge.cli import main
from modalbridge.cli.indexing import MediaIndex, collect_files, file_id, open_client
from modalbridge.media import decode_image

ATOL = 1e-5


@pytest.fixture(scope="module")
def clip(tiny_clip_path):
    return Embedder(tiny_clip_path), SentenceTransformer(tiny_clip_path)


# -- images converted faithfully -------------------------------------------------------------------


def test_16_bit_grayscale_png_is_scaled_not_clipped(clip, tmp_path):
    embedder, model = clip
    values = (np.arange(24 * 32, dtype=np.uint32).reshape(24, 32) * 85).astype(np.uint16)  # 0 .. 65195
    path = tmp_path / "deep.png"
    PILImageModule.fromarray(values).save(path)
    decoded = np.asarray(decode_image(Image(str(path))))
    by_hand = np.rint(values.astype(np.float64) * 255 / 65535).astype(np.uint8)
    np.testing.assert_array_equal(decoded, np.repeat(by_hand[..., None], 3, axis=2))
    assert decoded.mean() < 200  # Pillow's convert("RGB") clips nearly everything to 255
    reference = model.encode_document([PILImageModule.fromarray(by_hand).convert("RGB")])[0]
    np.testing.assert_allclose(embedder.embed_documents([Image(str(path))])[0], reference, atol=ATOL)


def test_palette_png_is_looked_up_in_its_palette(tmp_path):
    palette = np.array([[255, 0, 0], [0, 128, 255], [20, 200, 20], [7, 7, 7]], dtype=np.uint8)
    indices = (np.arange(16 * 16).reshape(16, 16) % 4).astype(np.uint8)
    image = PILImageModule.fromarray(indices, mode="P")
    image.putpalette(palette.flatten().tolist())
    image.info["transparency"] = 3
    buffer = BytesIO()
    image.save(buffer, format="PNG")
    decoded = np.asarray(decode_image(Image(buffer.getvalue())))
    np.testing.assert_array_equal(decoded, palette[indices])


# -- non-finite outputs never reach a store --------------------------------------------------------


@pytest.fixture(scope="module")
def poisoned_clip(tmp_path_factory):
    """A tiny CLIP whose image projection is NaN: images embed to NaN, texts are fine."""
    path = testing.build_tiny_clip(tmp_path_factory.mktemp("poisoned_clip"))
    embedder = Embedder(path, device="cpu")
    with torch.no_grad():
        for name, parameter in embedder.model.named_parameters():
            if "visual_projection" in name:
                parameter.fill_(float("nan"))
    return embedder


def test_a_nan_embedding_is_an_error_naming_the_item(poisoned_clip, image_paths):
    with pytest.raises(ValueError) as error:
        poisoned_clip.embed_documents(["fine", Image(image_paths[0])])
    assert str(error.value) == "item 1: the model gave a non-finite embedding (NaN or infinity) for it"
    vectors, errors = poisoned_clip.try_embed_documents(["fine", Image(image_paths[0]), "also fine"])
    assert sorted(vectors) == [0, 2] and list(errors) == [1]
    np.testing.assert_allclose(vectors[2], poisoned_clip.model.encode_document(["also fine"])[0], atol=ATOL)


def test_the_chroma_function_names_the_uri_of_a_nan_embedding(poisoned_clip, image_paths):
    from modalbridge.chroma import MultimodalDataLoader

    function = MultimodalEmbeddingFunction.from_embedder(poisoned_clip)
    loaded = MultimodalDataLoader()([image_paths[1]])
    with pytest.raises(ValueError, match=rf"^item 0 \(uri '{image_paths[1]}'\): the model gave a non-finite embedding"):
        function(loaded)


def test_a_nan_reranker_score_is_an_error_naming_the_document(tmp_path):
    path = testing.build_tiny_text_cross_encoder(tmp_path / "poisoned_ce")
    reranker = Reranker(path, device="cpu")
    with torch.no_grad():
        for name, parameter in reranker.model.named_parameters():
            if "classifier" in name:
                parameter.fill_(float("nan"))
    with pytest.raises(ValueError) as error:
        reranker.rank("q", ["a", "b"])
    assert str(error.value) == "document 0: the model gave a non-finite score (NaN or infinity) for it"


# -- indexing: one bad file never fails the others ------------------------------------------------


def test_index_a_folder_with_one_nan_wav(tmp_path, tiny_clip_path, tiny_clap_path, capsys):
    folder = tmp_path / "sounds"
    folder.mkdir()
    tone = testing.make_test_tone(0.5)
    sf.write(folder / "good.wav", tone, 16_000, subtype="FLOAT")
    sf.write(folder / "also-good.wav", tone[::-1].copy(), 16_000, subtype="FLOAT")
    poisoned = tone.copy()
    poisoned[100] = np.nan
    sf.write(folder / "nan.wav", poisoned, 16_000, subtype="FLOAT")
    db = tmp_path / "db"
    code = main(["index", str(folder), "--db", str(db), "--model", tiny_clip_path, "--audio-model", tiny_clap_path, "-q"])
    out = capsys.readouterr().out
    assert code == 1
    assert "2 added, 0 updated, 0 unchanged, 1 failed" in out
    bad = file_id(folder / "nan.wav")
    assert f"  {bad}: the audio holds 1 non-finite value(s) (first: nan at (100,))" in out
    stored = chromadb.PersistentClient(path=str(db)).get_collection("modalbridge-audio").get(include=["embeddings"])
    assert sorted(stored["ids"]) == sorted([file_id(folder / "good.wav"), file_id(folder / "also-good.wav")])
    direct = SentenceTransformer(tiny_clap_path).encode_document([{"array": tone, "sampling_rate": 16_000}])[0]
    row = stored["ids"].index(file_id(folder / "good.wav"))
    np.testing.assert_allclose(stored["embeddings"][row], direct, atol=1e-4)


def test_symlinked_files_are_indexed_once(tmp_path, image_paths):
    folder = tmp_path / "photos"
    folder.mkdir()
    target = folder / "cat.jpg"
    target.write_bytes(open(image_paths[0], "rb").read())
    os.symlink(target, folder / "alias.jpg")
    os.symlink(target, tmp_path / "outside.jpg")
    found = collect_files([folder, tmp_path / "outside.jpg"])
    assert found.files == [(file_id(target), "image")]


# -- precision ---------------------------------------------------------------------------------------


def test_int8_with_calibration_ranges_is_independent_of_batch_neighbours(clip):
    embedder, model = clip
    sample = ["a cat", "a dog", "a red car", "the sea", "a tree"]
    ranges = calibration_ranges(embedder, sample)
    floats = model.encode_document(sample)
    np.testing.assert_allclose(ranges, [floats.min(axis=0), floats.max(axis=0)], atol=ATOL)
    int8 = Embedder(embedder.load_settings.model_name_or_path, precision="int8", quantization_ranges=ranges)
    alone = int8.embed_query("a small cat")  # one query: no range of its own to compute
    with_others = int8.embed_queries(["zebra", "a small cat", "a long sentence about nothing"])[1]
    np.testing.assert_array_equal(alone, with_others)
    # A direct sentence-transformers call on the very model object, clipped to the ranges by numpy (where
    # sentence-transformers' cast would wrap around), quantized by sentence-transformers with the ranges.
    direct = np.clip(int8.model.encode_query(["a small cat"]), *np.asarray(ranges, dtype=np.float32))
    expected = quantize_embeddings(direct, "int8", ranges=np.asarray(ranges))[0]
    np.testing.assert_array_equal(alone, expected)
    outlier = np.full((1, 16), 1e3, dtype=np.float32)
    top = quantize_embeddings(np.asarray(ranges, dtype=np.float32)[1:], "int8", ranges=np.asarray(ranges))[0]
    np.testing.assert_array_equal(int8.quantize(outlier)[0], top)  # saturates at the range's top, never wraps
    assert (top >= 126).all()
    assert alone.dtype == np.int8


@pytest.mark.parametrize("precision", ["int8", "uint8"])
def test_int8_without_ranges_is_refused_with_advice(precision, tiny_clip_path):
    with pytest.raises(ValueError, match=rf"precision='{precision}' needs quantization_ranges: .*calibration_ranges"):
        Embedder(tiny_clip_path, precision=precision)


def test_binary_video_frames_quantize_the_mean_not_the_bits(tiny_clip_path):
    frames = testing.make_test_frames(num_frames=6)
    binary = Embedder(tiny_clip_path, video_frames=3, normalize=True, precision="binary")
    ours = binary.embed_documents([Video(frames)])[0]
    picked = [PILImageModule.fromarray(frames[i]) for i in np.linspace(0, 5, 3).round().astype(int)]
    model = SentenceTransformer(tiny_clip_path)
    mean = model.encode_document(picked, normalize_embeddings=True).mean(axis=0)
    expected = quantize_embeddings((mean / np.linalg.norm(mean))[None], "binary")[0]
    np.testing.assert_array_equal(ours, expected)
    assert binary.dimension == len(ours) == math.ceil(16 / 8)


@pytest.mark.parametrize("value", [-5, 0, 2.5, True])
def test_truncate_dim_out_of_range_is_refused_at_construction(value, tiny_clip_path):
    with pytest.raises(ValueError, match=rf"truncate_dim must be a positive integer or None, got {value!r}"):
        Embedder(tiny_clip_path, truncate_dim=value)


def test_truncate_dim_above_the_model_dimension_is_refused(clip):
    too_big = Embedder(clip[0].load_settings.model_name_or_path, truncate_dim=1000)
    message = "truncate_dim=1000 is larger than the model's embedding dimension 16; use a value from 1 to 16"
    with pytest.raises(ValueError, match=message):
        too_big.dimension
    with pytest.raises(ValueError, match=message):
        too_big.embed_query("x")
    fine = Embedder(clip[0].load_settings.model_name_or_path, truncate_dim=8)
    assert fine.dimension == len(fine.embed_query("x")) == 8


# -- remote code -------------------------------------------------------------------------------------


def test_media_index_remote_code_stays_with_the_index(tmp_path, tiny_clip_path, capsys):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("a red bicycle")
    db = tmp_path / "db"
    index = MediaIndex(open_client(db), model=tiny_clip_path, trust_remote_code=True, use_demo_models=False)
    assert index.index([notes]).ok
    # Nothing process-wide was switched on: an unrelated model is not allowed.
    assert not remote_code_allowed("someone/else")
    # The stored collection asks for remote code; another process (or caller) that did not ask is refused.
    again = MediaIndex(open_client(db), trust_remote_code=True, use_demo_models=False)
    assert again.search("bicycle").hits
    (notes / "b.txt").write_text("a blue boat")
    assert again.index([notes]).added == [file_id(notes / "b.txt")]  # writes to the stored collection work
    assert not remote_code_allowed(tiny_clip_path)  # and still nothing process-wide, even for this model
    capsys.readouterr()
    code = main(["search", "bicycle", "--db", str(db)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith("modalbridge: error: collection 'modalbridge' was built with model ")
    assert "pass --trust-remote-code" in captured.err and "Traceback" not in captured.err
    assert captured.err.count("\n") == 1 and captured.out == ""
    assert main(["search", "bicycle", "--db", str(db), "--trust-remote-code"]) == 0


def test_langchain_none_document_names_the_index(tiny_clip_path):
    from modalbridge.langchain import MultimodalEmbeddings

    with pytest.raises(TypeError, match=r"^item 1: None is not an input$"):
        MultimodalEmbeddings(model_name=tiny_clip_path).embed_documents(["ok", None])


def test_waveform_sampling_rate_zero_and_nan_audio_name_the_item(tiny_clap_path):
    embedder = Embedder(tiny_clap_path)
    with pytest.raises(MediaError, match=r"^item 1: an array of shape \(800,\): sampling_rate must be a positive integer, got 0$"):
        embedder.embed_documents(["x", Audio(np.zeros(800, np.float32), sampling_rate=0)])
