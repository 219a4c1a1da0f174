"""MultiVectorEmbedder: equality with direct MultiVectorEncoder calls, MaxSim scores, shared model cache."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

from modalbridge import Audio, Embedder, Image, MediaError
from modalbridge.loading import MODEL_CACHE
from modalbridge.multivector import MultiVectorEmbedder, maxsim


def _pictures(n: int, size: int = 64) -> list[PILImage.Image]:
    rng = np.random.default_rng(7)
    return [PILImage.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


@pytest.fixture(scope="module")
def colqwen(tiny_colqwen2_path):
    return MultiVectorEmbedder(tiny_colqwen2_path, device="cpu")


@pytest.fixture(scope="module")
def direct(tiny_colqwen2_path):
    from sentence_transformers import MultiVectorEncoder

    return MultiVectorEncoder(tiny_colqwen2_path, device="cpu")


def test_documents_and_queries_equal_direct_calls(colqwen, direct, image_paths):
    pictures = _pictures(3)
    items = [Image(pictures[0]), "a text page", Image(image_paths[0]), Image(pictures[1])]
    ours = colqwen.embed_documents(items)
    # one modality per direct call (the retrieval processor refuses mixed text + image batches)
    images = direct.encode_document([pictures[0], PILImage.open(image_paths[0]).convert("RGB"), pictures[1]], convert_to_numpy=True)
    texts = direct.encode_document(["a text page"], convert_to_numpy=True)
    expected = [images[0], texts[0], images[1], images[2]]
    assert [m.shape for m in ours] == [e.shape for e in expected]
    for mine, theirs in zip(ours, expected):
        np.testing.assert_array_equal(mine, theirs)
    assert all(m.dtype == np.float32 and m.shape[1] == colqwen.dimension == 16 for m in ours)

    queries = colqwen.embed_queries(["a red square", "two birds on a wire"])
    for mine, theirs in zip(queries, direct.encode_query(["a red square", "two birds on a wire"], convert_to_numpy=True)):
        np.testing.assert_array_equal(mine, theirs)
    # one query alone (no padding against a longer one) equals one direct call
    np.testing.assert_array_equal(colqwen.embed_query("a red square"), direct.encode_query("a red square", convert_to_numpy=True))


def test_score_equals_model_similarity_and_maxsim_by_hand(colqwen, direct):
    documents = colqwen.embed_documents([Image(p) for p in _pictures(4)])
    query = colqwen.embed_query("a blue circle")
    scores = colqwen.score(query, documents)
    expected = direct.similarity([query], documents).numpy()[0]
    np.testing.assert_array_equal(scores, expected)
    by_hand = np.array([(query @ d.T).max(axis=1).sum() for d in documents], dtype=np.float32)
    np.testing.assert_allclose(scores, by_hand, rtol=1e-5)
    np.testing.assert_allclose(maxsim(query, documents, length_normalize=True), by_hand / len(query), rtol=1e-5)


def test_rank_orders_by_maxsim(colqwen):
    pictures = [Image(p) for p in _pictures(5)]
    ranked = colqwen.rank("a green triangle", pictures, top_n=3)
    scores = colqwen.score(colqwen.embed_query("a green triangle"), colqwen.embed_documents(pictures))
    assert [hit.index for hit in ranked] == list(np.argsort(-scores, kind="stable")[:3])
    assert [hit.score for hit in ranked] == pytest.approx(sorted(scores, reverse=True)[:3])
    assert colqwen.rank("q", []) == []


def test_token_pooling_equals_direct_pooled_call(colqwen, direct, tiny_colqwen2_path):
    from sentence_transformers.multi_vector_encoder.modules import HierarchicalTokenPooling

    pooled = MultiVectorEmbedder(tiny_colqwen2_path, device="cpu", token_pool_factor=2)
    assert pooled.model is colqwen.model  # encode settings are not part of the cache key
    pictures = _pictures(2)
    ours = pooled.embed_documents([Image(p) for p in pictures])
    theirs = direct.encode_document(pictures, convert_to_numpy=True, token_pooling=HierarchicalTokenPooling(pool_factor=2))
    for mine, expected in zip(ours, theirs):
        np.testing.assert_array_equal(mine, expected)
    full = colqwen.embed_documents([Image(pictures[0])])[0]
    assert len(ours[0]) < len(full)
    # queries are never pooled
    np.testing.assert_array_equal(pooled.embed_query("a query"), colqwen.embed_query("a query"))


def test_shares_the_model_cache_under_its_own_kind(tiny_colqwen2_path, colqwen):
    again = MultiVectorEmbedder(tiny_colqwen2_path, device="cpu", batch_size=4)
    assert again.model is colqwen.model
    assert MODEL_CACHE.is_loaded("multivector", again.load_settings)
    assert not MODEL_CACHE.is_loaded("embedder", again.load_settings)
    assert type(again.model).__name__ == "MultiVectorEncoder"
    rebuilt = MultiVectorEmbedder.from_config(again.config())
    assert type(rebuilt) is MultiVectorEmbedder and rebuilt.model is colqwen.model


def test_errors_name_the_item_and_refuse_settings_that_do_not_apply(colqwen, tiny_colqwen2_path, tmp_path):
    with pytest.raises(ValueError, match=r"item 1: .*audio.*which this model does not support"):
        colqwen.embed_documents(["text", Audio(np.zeros(16000, dtype=np.float32), sampling_rate=16000)])

    with pytest.raises(MediaError, match=r"item 1: .*missing\.jpg"):
        colqwen.embed_documents(["text", Image(str(tmp_path / "missing.jpg"))])
    vectors, errors = colqwen.try_embed_documents([Image(_pictures(1)[0]), Image(str(tmp_path / "missing.jpg"))])
    assert list(vectors) == [0] and list(errors) == [1] and "missing.jpg" in str(errors[1])
    for setting, value in (("truncate_dim", 8), ("precision", "int8"), ("video_frames", 4)):
        with pytest.raises(ValueError, match=f"MultiVectorEmbedder does not take {setting}"):
            MultiVectorEmbedder(tiny_colqwen2_path, **{setting: value})
    with pytest.raises(ValueError, match="Embedder does not take token_pool_factor"):
        Embedder(tiny_colqwen2_path, token_pool_factor=2)
    with pytest.raises(ValueError, match="token_pool_factor must be at least 1"):
        MultiVectorEmbedder(tiny_colqwen2_path, token_pool_factor=0.5)
