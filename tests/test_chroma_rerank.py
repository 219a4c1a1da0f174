"""Unit tests of reranking a Chroma query result: the row -> reranker document mapping, order, fields,
and errors naming the id. Results are dicts in the shape ``collection.query`` returns."""

from __future__ import annotations

import numpy as np
import pytest

import chromadb  # noqa: F401

from modalbridge import Image, Reranker  # noqa: E402
from modalbridge.chroma import RerankedResult, rerank_query_result, rerank_query_results  # noqa: E402


@pytest.fixture(scope="module")
def reranker(tiny_qwen3vl_reranker_path) -> Reranker:
    return Reranker(tiny_qwen3vl_reranker_path)


@pytest.fixture(scope="module")
def small_photo(image_paths) -> np.ndarray:
    from PIL import Image as PILImage

    with PILImage.open(image_paths[2]) as image:
        return np.array(image.convert("RGB").resize((40, 32)))


@pytest.fixture
def result(image_paths, small_photo) -> dict:
    """Two queries' hits: a text document, an image URI, loaded data, and data + URI on one hit."""
    return {
        "ids": [["doc", "uri", "data", "both"], ["x"]],
        "documents": [["a red bicycle", None, None, None], ["x doc"]],
        "uris": [[None, image_paths[0], None, image_paths[1]], [None]],
        "data": [[None, None, small_photo, small_photo], [None]],
        "metadatas": [[{"k": 0}, {"k": 1}, None, {"k": 3}], [None]],
        "distances": [[0.1, 0.2, 0.3, 0.4], [0.5]],
        "embeddings": None,
        "included": ["documents", "uris", "data", "metadatas", "distances"],
    }


def test_auto_scores_data_then_uri_then_document(result, reranker, image_paths, small_photo):
    ranked = rerank_query_result(result, "a bicycle", reranker)
    expected = reranker.score("a bicycle", ["a red bicycle", Image(image_paths[0]), Image(small_photo), Image(small_photo)])
    order = list(np.argsort(-expected, kind="stable"))
    assert isinstance(ranked, RerankedResult) and len(ranked) == 4
    assert ranked.positions == order
    assert ranked.ids == [result["ids"][0][i] for i in order]
    np.testing.assert_allclose(ranked.scores, expected[order], rtol=1e-6)
    assert ranked.scores == sorted(ranked.scores, reverse=True)
    by_id = dict(zip(ranked.ids, ranked.sources))
    assert by_id == {"doc": "document", "uri": "uri", "data": "data", "both": "data"}
    for field in ("documents", "uris", "metadatas", "distances"):
        assert getattr(ranked, field) == [result[field][0][i] for i in order]
    assert all(ranked.data[k] is result["data"][0][i] for k, i in enumerate(order))


def test_explicit_sources(result, reranker, image_paths):
    only_uris = {**result, "ids": [["uri", "both"]], "uris": [[image_paths[0], image_paths[1]]], "documents": None, "data": None}
    ranked = rerank_query_result(only_uris, "a photo", reranker, source="uris")
    assert ranked.sources == ["uri", "uri"] and ranked.documents is None and ranked.data is None
    expected = reranker.score("a photo", [Image(image_paths[0]), Image(image_paths[1])])
    np.testing.assert_allclose(sorted(ranked.scores, reverse=True), sorted(expected, reverse=True), rtol=1e-6)
    with pytest.raises(ValueError, match=r"id 'uri': the query result has no document for this hit to rerank"):
        rerank_query_result(result, "q", reranker, source="documents")
    with pytest.raises(ValueError, match=r"id 'doc': the query result has no data for this hit"):
        rerank_query_result(result, "q", reranker, source="data")
    with pytest.raises(ValueError, match="source must be"):
        rerank_query_result(result, "q", reranker, source="text")


def test_missing_content_names_the_id(result, reranker):
    bare = {"ids": [["a", "b"]], "documents": [["text", None]], "distances": [[0.1, 0.2]]}
    with pytest.raises(ValueError, match=r"id 'b': the query result has no data, uri or document for this hit"):
        rerank_query_result(bare, "q", reranker)


def test_top_n_rows_and_media_queries(result, reranker, image_paths):
    assert len(rerank_query_result(result, "q", reranker, top_n=2)) == 2
    second = rerank_query_result(result, "q", reranker, row=1)
    assert second.ids == ["x"] and second.sources == ["document"]
    with pytest.raises(IndexError, match="row 2 is out of range: the result has 2 queries"):
        rerank_query_result(result, "q", reranker, row=2)
    # A media query: tagged (a str is always text, never read as a path).
    ranked = rerank_query_result(result, Image(image_paths[3]), reranker)
    expected = reranker.score(Image(image_paths[3]), ["a red bicycle", Image(image_paths[0])])
    assert dict(zip(ranked.ids, ranked.scores))["doc"] == pytest.approx(float(expected[0]), rel=1e-6)
    both = rerank_query_results(result, ["q0", "q1"], reranker, top_n=1)
    assert [len(r) for r in both] == [1, 1] and both[1].ids == ["x"]
    with pytest.raises(ValueError, match="got 1 queries for a result of 2 queries"):
        rerank_query_results(result, ["q0"], reranker)


def test_reranker_errors_name_the_id(result, tiny_text_cross_encoder_path):
    text_only = Reranker(tiny_text_cross_encoder_path)
    with pytest.raises(ValueError, match=r"document 1 \(id 'uri'\): Image\(.*\) is image, which this model does not support"):
        rerank_query_result(result, "q", text_only)
    with pytest.raises(TypeError, match="must be what collection.query"):
        rerank_query_result([["a"]], "q", text_only)
