"""The tiny offline models and media of ``modalbridge.testing`` load, encode, and are deterministic."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from modalbridge import testing

TEXTS = ["a dog runs on the beach", "a bowl of fruit", "Ünïcode ☃ and émoji 🙂 survive"]


def _same_twice(encode, inputs) -> np.ndarray:
    first, second = encode(inputs), encode(inputs)
    np.testing.assert_array_equal(first, second)
    return first


@pytest.fixture(scope="module")
def images(image_paths) -> list[Image.Image]:
    return [Image.open(path).convert("RGB") for path in image_paths[:2]]


# --- helpers ------------------------------------------------------------------------------------


def test_byte_level_vocab_is_gap_free_and_covers_all_bytes():
    vocab = testing.byte_level_vocab(["<s>", "</s>"])
    assert sorted(vocab.values()) == list(range(len(vocab))) and len(vocab) == 2 + 256
    assert vocab["<s>"] == 0 and vocab["</s>"] == 1
    with_suffix = testing.byte_level_vocab(["<s>"], end_of_word_suffix="</w>")
    assert len(with_suffix) == 1 + 2 * 256 and "a</w>" in with_suffix


def test_builds_are_seeded_and_leave_global_rng_alone(tmp_path):
    import torch

    state = torch.random.get_rng_state()
    first = testing.build_tiny_clip(tmp_path / "a")
    second = testing.build_tiny_clip(tmp_path / "b")
    assert torch.equal(state, torch.random.get_rng_state())
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    assert first == str(tmp_path / "a") and second == str(tmp_path / "b")
    other_seed = testing.build_tiny_clip(tmp_path / "c", seed=1)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() != (
        tmp_path / "c" / "model.safetensors"
    ).read_bytes(), other_seed


# --- CLIP ---------------------------------------------------------------------------------------


def test_tiny_clip(tiny_clip_path, images, image_paths):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(tiny_clip_path)
    assert model.modalities == ["text", "image"]
    assert model.get_embedding_dimension() == 16
    assert _same_twice(model.encode, TEXTS).shape == (3, 16)
    from_pil = _same_twice(model.encode, images)
    from_paths = model.encode(image_paths[:2])
    assert from_pil.shape == (2, 16)
    np.testing.assert_allclose(from_pil, from_paths, atol=1e-5)
    # CLIP-type models take one modality per batch (the adapter must split batches)
    with pytest.raises(ValueError, match="mixes multiple modalities"):
        model.encode(["a text", images[0]])


# --- CLAP ---------------------------------------------------------------------------------------


def test_tiny_clap(tiny_clap_path, audio_paths):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(tiny_clap_path)
    assert model.modalities == ["text", "audio"]
    feature_extractor = model[0].processor.feature_extractor
    assert feature_extractor.sampling_rate == 16_000 and feature_extractor.nb_max_samples == 16_000
    assert _same_twice(model.encode, TEXTS).shape == (3, 16)

    # A 3 s clip cut to the extractor's maximum embeds deterministically (uncut, it is cropped at random).
    tone = testing.make_test_tone(3.0, 16_000, 440.0)
    clips = [
        {"array": tone[: feature_extractor.nb_max_samples], "sampling_rate": 16_000},
        {"array": testing.make_test_tone(0.5, 16_000, 880.0), "sampling_rate": 16_000},
    ]
    embeddings = _same_twice(model.encode, clips)
    assert embeddings.shape == (2, 16)
    assert not np.allclose(embeddings[0], embeddings[1])

    # Paths are decoded and resampled (22.05 kHz -> 16 kHz) by the processor.
    assert model.encode(audio_paths).shape == (4, 16)
    with pytest.raises(ValueError, match="sampling rate"):
        model.encode([{"array": tone[:22_050], "sampling_rate": 22_050}])


# --- Qwen3-VL embedder ----------------------------------------------------------------------------


def test_tiny_qwen3vl_embedder(tiny_qwen3vl_path, images, video_path):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(tiny_qwen3vl_path)
    assert model.modalities == ["text", "image", "video", "message"]
    assert model.prompts["query"] == testing.QWEN3VL_PROMPTS["query"]
    assert model.get_embedding_dimension() == 32

    texts = _same_twice(model.encode, TEXTS)
    assert texts.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert _same_twice(model.encode, images).shape == (2, 32)
    assert _same_twice(model.encode, [video_path]).shape == (1, 32)
    assert _same_twice(model.encode, [{"text": "a bowl of fruit", "image": images[0]}]).shape == (1, 32)
    assert model.encode(["text", images[0], video_path]).shape == (3, 32)  # mixed batches work

    # The query prompt is a system message, so it changes text and image embeddings alike.
    for item in (TEXTS[0], images[0]):
        query, document = model.encode_query([item]), model.encode_document([item])
        assert not np.allclose(query, document)
        np.testing.assert_allclose(document, model.encode([item]), atol=1e-6)


def test_qwen3vl_video_frames_need_metadata_to_match_the_file(tiny_qwen3vl_path, video_path):
    from sentence_transformers import SentenceTransformer
    from transformers.video_utils import load_video

    model = SentenceTransformer(tiny_qwen3vl_path)
    from_file = model.encode([video_path])
    # Decoded with PyAV (no system FFmpeg needed) and passed with its metadata: same as the file.
    frames, metadata = load_video(video_path, backend="pyav")
    with_metadata = {"array": frames, "video_metadata": {"fps": metadata.fps, "total_num_frames": len(frames)}}
    np.testing.assert_allclose(model.encode([with_metadata]), from_file, atol=1e-5)
    # Bare frames are assumed to be 24 fps, so the processor samples other frames than from the file.
    bare = model.encode([frames])
    np.testing.assert_array_equal(bare, model.encode([{"video": frames}]))
    assert not np.allclose(bare, from_file, atol=1e-3)


# --- cross-encoders -----------------------------------------------------------------------------


def test_tiny_text_cross_encoder(tiny_text_cross_encoder_path):
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(tiny_text_cross_encoder_path)
    assert model.num_labels == 1 and model.modalities == ["text"]
    pairs = [("a query", doc) for doc in TEXTS]
    scores = _same_twice(model.predict, pairs)
    assert scores.shape == (3,) and np.all((scores > 0) & (scores < 1))
    assert len(set(np.round(scores, 4))) == 3  # spread enough to rank without ties
    ranked = model.rank("a query", TEXTS)
    assert sorted(hit["corpus_id"] for hit in ranked) == [0, 1, 2]
    assert [hit["score"] for hit in ranked] == sorted((hit["score"] for hit in ranked), reverse=True)


def test_tiny_qwen3vl_reranker(tiny_qwen3vl_reranker_path, images, video_path):
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(tiny_qwen3vl_reranker_path)
    assert model.num_labels == 1
    assert model.modalities == ["text", "image", "video", "message"]
    scores = _same_twice(model.predict, [("a bowl of fruit", images[0]), ("a bowl of fruit", "a text document")])
    assert scores.shape == (2,) and np.all((scores > 0) & (scores < 1))
    assert model.predict([("a clip", video_path)]).shape == (1,)
    ranked = model.rank("a bowl of fruit", [images[0], "a text document", images[1]])
    assert sorted(hit["corpus_id"] for hit in ranked) == [0, 1, 2]
    assert [hit["score"] for hit in ranked] == sorted((hit["score"] for hit in ranked), reverse=True)


# --- real MiniLM --------------------------------------------------------------------------------


def test_minilm(minilm_model_path):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(minilm_model_path)
    assert model.modalities == ["text"]
    embeddings = _same_twice(model.encode, ["a dog plays fetch", "a puppy chases a ball", "quarterly tax filing"])
    assert embeddings.shape == (3, 384)
    similarity = embeddings @ embeddings.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2


# --- media --------------------------------------------------------------------------------------


def test_make_test_frames_and_video(tmp_path):
    import av

    frames = testing.make_test_frames(num_frames=6, size=(24, 40), color_shift=1)
    assert frames.shape == (6, 24, 40, 3) and frames.dtype == np.uint8
    assert not np.array_equal(frames[0], frames[1])  # things move
    assert not np.array_equal(testing.make_test_frames(), testing.make_test_frames(color_shift=1))
    np.testing.assert_array_equal(testing.make_test_frames(), testing.make_test_frames())

    first = testing.make_test_video(tmp_path / "a.mp4")
    second = testing.make_test_video(tmp_path / "b.mp4")
    assert first == str(tmp_path / "a.mp4")
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    with av.open(first) as container:
        decoded = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
        assert float(container.streams.video[0].average_rate) == 4
    assert decoded.shape == (8, 32, 32, 3)
    # lossy, but close to the source frames
    assert np.abs(decoded.astype(int) - testing.make_test_frames().astype(int)).mean() < 12


def test_make_test_tone():
    tone = testing.make_test_tone(1.5, 16_000, 440.0)
    assert tone.dtype == np.float32 and tone.shape == (24_000,)
    assert 0.3 < np.abs(tone).max() <= 0.5
    np.testing.assert_array_equal(tone, testing.make_test_tone(1.5, 16_000, 440.0))
