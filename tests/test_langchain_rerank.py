"""LangChain MultimodalRerank: order and scores equal the core Reranker's, text and media documents
(metadata sources, base64 page_content from Chroma.add_images, paths), top_n / score_threshold, copies,
shared models, exact errors, and async compression off the event loop."""

import asyncio
import base64

import pytest
from langchain_core.documents import Document
from pydantic import ValidationError

from modalbridge import Image, MediaError, Reranker
from modalbridge.langchain import MultimodalRerank

TEXTS = ["a fast cat", "a slow snail", "a kitchen", "what is a cheetah", "spotted animals run"]


def b64(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode("ascii")


@pytest.fixture(scope="module")
def text_rerank(tiny_text_cross_encoder_path):
    return MultimodalRerank(model_name=tiny_text_cross_encoder_path, top_n=None), Reranker(tiny_text_cross_encoder_path)


@pytest.fixture(scope="module")
def vl_rerank(tiny_qwen3vl_reranker_path):
    return MultimodalRerank(model_name=tiny_qwen3vl_reranker_path, top_n=None), Reranker(tiny_qwen3vl_reranker_path)


def test_text_order_and_scores_equal_core_rank(text_rerank):
    rerank, core = text_rerank
    documents = [Document(page_content=t, metadata={"n": i}, id=f"d{i}") for i, t in enumerate(TEXTS)]
    result = rerank.compress_documents(documents, "cheetah")
    expected = core.rank("cheetah", TEXTS)
    assert [d.metadata["n"] for d in result] == [hit.index for hit in expected]
    assert [d.metadata["relevance_score"] for d in result] == [hit.score for hit in expected]
    assert [d.id for d in result] == [f"d{hit.index}" for hit in expected]
    assert all(type(d.metadata["relevance_score"]) is float for d in result)


def test_documents_are_copied_not_mutated(text_rerank):
    rerank, _ = text_rerank
    documents = [Document(page_content=t, metadata={"n": i}) for i, t in enumerate(TEXTS)]
    result = rerank.compress_documents(documents, "cheetah")
    assert all(d.metadata.keys() == {"n"} for d in documents)
    assert not any(r is d for r in result for d in documents)


def test_top_n_and_score_threshold(tiny_text_cross_encoder_path, text_rerank):
    _, core = text_rerank
    documents = [Document(page_content=t) for t in TEXTS]
    expected = core.rank("cheetah", TEXTS)
    top2 = MultimodalRerank(model_name=tiny_text_cross_encoder_path, top_n=2).compress_documents(documents, "cheetah")
    assert [d.page_content for d in top2] == [TEXTS[hit.index] for hit in expected[:2]]
    assert MultimodalRerank(model_name=tiny_text_cross_encoder_path).top_n == 3  # LangChain compressors' default
    threshold = expected[2].score  # keeps exactly the best three (scores >= threshold)
    kept = MultimodalRerank(
        model_name=tiny_text_cross_encoder_path, top_n=None, score_threshold=threshold
    ).compress_documents(documents, "cheetah")
    assert [d.page_content for d in kept] == [TEXTS[hit.index] for hit in expected[:3]]
    assert MultimodalRerank(model_name=tiny_text_cross_encoder_path, top_n=0).compress_documents(documents, "x") == []


def test_empty_input_loads_nothing(tmp_path):
    rerank = MultimodalRerank(model_name=str(tmp_path / "not-loaded"))
    assert rerank.compress_documents([], "query") == []
    assert not rerank.reranker.is_loaded


def test_shares_the_core_model(tiny_qwen3vl_reranker_path, vl_rerank):
    rerank, core = vl_rerank
    assert rerank._reranker.model is core.model
    assert MultimodalRerank(model_name=tiny_qwen3vl_reranker_path, batch_size=2, top_n=1).reranker.model is core.model
    assert MultimodalRerank(model_name=tiny_qwen3vl_reranker_path, max_length=64).reranker.config()["max_length"] == 64


def test_metadata_media_documents_equal_core_rank(vl_rerank, image_paths):
    rerank, core = vl_rerank
    documents = [
        Document(page_content="a yellow kitchen", metadata={"n": 0}),
        Document(page_content="caption, not scored", metadata={"n": 1, "image": image_paths[0]}),
        Document(page_content="a street sign", metadata={"n": 2}),
        Document(page_content="", metadata={"n": 3, "image": image_paths[1], "audio": None}),  # None: no source
    ]
    items = ["a yellow kitchen", Image(image_paths[0]), "a street sign", Image(image_paths[1])]
    result = rerank.compress_documents(documents, "kitchen")
    expected = core.rank("kitchen", items)
    assert [d.metadata["n"] for d in result] == [hit.index for hit in expected]
    assert [d.metadata["relevance_score"] for d in result] == [hit.score for hit in expected]


def test_base64_page_content_equals_the_image_file(tiny_qwen3vl_reranker_path, vl_rerank, image_paths):
    _, core = vl_rerank
    rerank = MultimodalRerank(model_name=tiny_qwen3vl_reranker_path, top_n=None, page_content_modality="image_base64")
    uris = image_paths[:3]
    documents = [Document(page_content=b64(u), metadata={"uri": u}) for u in uris]  # as Chroma.add_images stores
    result = rerank.compress_documents(documents, "a dog")
    expected = core.rank("a dog", [Image(u) for u in uris])
    assert [d.metadata["uri"] for d in result] == [uris[hit.index] for hit in expected]
    assert [d.metadata["relevance_score"] for d in result] == [hit.score for hit in expected]


def test_page_content_paths_and_custom_keys(tiny_qwen3vl_reranker_path, vl_rerank, image_paths):
    _, core = vl_rerank
    uris = image_paths[3:6]
    by_path = MultimodalRerank(model_name=tiny_qwen3vl_reranker_path, top_n=None, page_content_modality="image")
    result = by_path.compress_documents([Document(page_content=u) for u in uris], "a dog")
    assert [d.page_content for d in result] == [uris[h.index] for h in core.rank("a dog", [Image(u) for u in uris])]
    # A custom key, and the default key turned off: metadata["image"] is then just metadata.
    custom = MultimodalRerank(model_name=tiny_qwen3vl_reranker_path, top_n=None, image_key="picture")
    documents = [
        Document(page_content="text", metadata={"picture": uris[0]}),
        Document(page_content=uris[1], metadata={"image": uris[2]}),
    ]
    off = MultimodalRerank(model_name=tiny_qwen3vl_reranker_path, top_n=None, image_key=None)
    assert custom.document_item(documents[0]) == Image(uris[0])
    assert off.document_item(documents[1]) == uris[1]  # text stays text, even when it is a path


def test_errors_name_the_document(vl_rerank, image_paths, tmp_path, audio_paths):
    rerank, _ = vl_rerank
    both = Document(page_content="x", metadata={"image": image_paths[0], "video": "clip.mp4"}, id="doc-7")
    with pytest.raises(
        ValueError,
        match=r"document 1 \(id 'doc-7'\): metadata\['image'\], metadata\['video'\] each name a media source",
    ):
        rerank.compress_documents([Document(page_content="ok"), both], "q")
    with pytest.raises(TypeError, match=r"document 0: metadata\['image'\]: cannot read an int as an image"):
        rerank.compress_documents([Document(page_content="x", metadata={"image": 5})], "q")
    missing = str(tmp_path / "missing.jpg")
    documents = [Document(page_content="a"), Document(page_content="", metadata={"image": missing})]
    with pytest.raises(MediaError, match=f"document 1: {missing}: no such file"):
        rerank.compress_documents(documents, "q")
    with pytest.raises(ValueError, match=r"document 0: Audio\(.*\) is audio, which this model does not support"):
        rerank.compress_documents([Document(page_content="", metadata={"audio": audio_paths[0]})], "q")
    base64_rerank = rerank.model_copy(update={"page_content_modality": "image_base64"})
    with pytest.raises(ValueError, match="document 0: page_content: Image.from_base64: not valid base64"):
        base64_rerank.compress_documents([Document(page_content="not base64!")], "q")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        MultimodalRerank(model_name="x", model="y")


async def test_acompress_equals_sync_and_does_not_block(text_rerank):
    rerank, _ = text_rerank
    documents = [Document(page_content=f"{t} {i}") for i in range(40) for t in TEXTS]
    expected = rerank.compress_documents(documents, "cheetah")
    task = asyncio.create_task(rerank.acompress_documents(documents, "cheetah"))
    ticks = 0
    while not task.done():
        await asyncio.sleep(0.001)
        ticks += 1
    assert task.result() == expected
    assert ticks >= 3
