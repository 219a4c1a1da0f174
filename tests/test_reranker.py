"""Reranker: equality with CrossEncoder.predict / rank for text and media pairs, order, errors."""

import numpy as np
import pytest
from sentence_transformers import CrossEncoder
from transformers.image_utils import load_image

from modalbridge import Audio, Image, Reranker, Video

ATOL = 1e-6


@pytest.fixture(scope="module")
def text_reranker(tiny_text_cross_encoder_path):
    return Reranker(tiny_text_cross_encoder_path), CrossEncoder(tiny_text_cross_encoder_path)


@pytest.fixture(scope="module")
def vl_reranker(tiny_qwen3vl_reranker_path):
    return Reranker(tiny_qwen3vl_reranker_path), CrossEncoder(tiny_qwen3vl_reranker_path)


def test_text_scores_and_rank_equal_cross_encoder(text_reranker):
    reranker, model = text_reranker
    query, documents = "what is a cheetah", ["a fast cat", "a slow snail", "a kitchen", "http://x.invalid/a.jpg"]
    scores = reranker.score(query, documents)
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, model.predict([(query, d) for d in documents]), atol=ATOL)
    ranked = reranker.rank(query, documents, top_n=3)
    expected = model.rank(query, documents, top_k=3)
    assert [hit.index for hit in ranked] == [hit["corpus_id"] for hit in expected]
    np.testing.assert_allclose([hit.score for hit in ranked], [hit["score"] for hit in expected], atol=ATOL)


def test_text_query_against_mixed_documents(vl_reranker, image_paths):
    reranker, model = vl_reranker
    documents = ["a yellow kitchen", Image(image_paths[0]), "a street sign", Image(image_paths[1])]
    scores = reranker.score("kitchen", documents)
    text = model.predict([("kitchen", "a yellow kitchen"), ("kitchen", "a street sign")])
    images = model.predict([("kitchen", load_image(image_paths[0])), ("kitchen", load_image(image_paths[1]))])
    np.testing.assert_allclose(scores, [text[0], images[0], text[1], images[1]], atol=ATOL)
    order = [hit.index for hit in reranker.rank("kitchen", documents)]
    assert order == list(np.argsort(-scores, kind="stable"))


def test_image_query_against_text_documents(vl_reranker, image_paths):
    reranker, model = vl_reranker
    documents = ["a kitchen", "a bicycle", "two dogs"]
    scores = reranker.score(Image(image_paths[3]), documents)
    pil = load_image(image_paths[3])
    np.testing.assert_allclose(scores, model.predict([(pil, d) for d in documents]), atol=ATOL)
    expected = model.rank(pil, documents)
    assert [hit.index for hit in reranker.rank(Image(image_paths[3]), documents)] == [e["corpus_id"] for e in expected]


def test_video_documents_are_scored(vl_reranker, video_path):
    reranker, model = vl_reranker
    assert "video" in model.modalities
    scores = reranker.score("moving shapes", [Video(video_path)])
    np.testing.assert_allclose(scores, model.predict([("moving shapes", {"video": video_path})]), atol=ATOL)


def test_top_n_and_empty(text_reranker):
    reranker, _ = text_reranker
    assert reranker.rank("q", ["a", "b", "c"], top_n=0) == []
    assert len(reranker.rank("q", ["a", "b", "c"], top_n=10)) == 3
    assert reranker.score("q", []).shape == (0,)
    with pytest.raises(ValueError, match="top_n must be at least 0"):
        reranker.rank("q", ["a"], top_n=-1)


def test_unsupported_documents_and_queries_are_named(text_reranker, vl_reranker, image_paths, audio_paths):
    reranker, _ = text_reranker
    with pytest.raises(ValueError) as error:
        reranker.score("q", ["fine", Image(image_paths[0])])
    assert str(error.value) == (
        f"document 1: Image({image_paths[0]}) is image, which this model does not support; it supports: text"
    )
    with pytest.raises(ValueError, match=r"^query 0: Image\(.*\) is image, which this model does not support"):
        reranker.score(Image(image_paths[0]), ["fine"])
    # The chat-template reranker would score an audio document like an empty one: refused instead.
    with pytest.raises(ValueError, match=r"document 0: Audio\(.*\) is audio, which this model does not support"):
        vl_reranker[0].score("q", [Audio(audio_paths[0])])
    with pytest.raises(TypeError, match=r"document 1: an array of shape \(2, 2, 3\) is ambiguous"):
        vl_reranker[0].score("q", ["x", np.zeros((2, 2, 3), dtype=np.uint8)])


def test_unreadable_document_is_named(vl_reranker, tmp_path):
    reranker, _ = vl_reranker
    missing = str(tmp_path / "nope.png")
    with pytest.raises(ValueError, match=f"document 2: {missing}: no such file"):
        reranker.score("q", ["a", "b", Image(missing)])


def test_text_that_looks_like_media_stays_text_in_media_pairs(vl_reranker, image_paths, tmp_path, monkeypatch):
    reranker, model = vl_reranker
    monkeypatch.chdir(tmp_path)
    reference = model.predict([({"text": "cat.jpg"}, load_image(image_paths[0]))])
    (tmp_path / "cat.jpg").write_bytes(open(image_paths[1], "rb").read())
    # "cat.jpg" now names an image file; as a query string it must still be text.
    np.testing.assert_allclose(reranker.score("cat.jpg", [Image(image_paths[0])]), reference, atol=ATOL)
