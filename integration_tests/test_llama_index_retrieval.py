"""LlamaIndex end to end: MultiModalVectorStoreIndex and VectorStoreIndex backed by Chroma, with
MultimodalEmbedding and MultimodalRerank on tiny offline models.

Random tiny models have no semantics, so the checks are exact: a query engine's source nodes come in
the core Reranker's order, retrieval order equals the order of the core embeddings' similarities, and
a medium queried by itself comes back first."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

import llama_index.core  # noqa: F401
import chromadb
import llama_index.vector_stores.chroma  # noqa: F401

from llama_index.core import StorageContext, VectorStoreIndex  # noqa: E402
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler  # noqa: E402
from llama_index.core.indices import MultiModalVectorStoreIndex  # noqa: E402
from llama_index.core.instrumentation import get_dispatcher  # noqa: E402
from llama_index.core.instrumentation.event_handlers import BaseEventHandler  # noqa: E402
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent  # noqa: E402
from llama_index.core.llms import MockLLM  # noqa: E402
from llama_index.core.schema import Document, ImageNode, MediaResource, Node, QueryBundle, TextNode  # noqa: E402
from llama_index.vector_stores.chroma import ChromaVectorStore  # noqa: E402
from modalbridge import Embedder, Image, Reranker  # noqa: E402
from modalbridge.llama_index import MultimodalEmbedding, MultimodalRerank, node_to_item  # noqa: E402
from modalbridge.loading import MODEL_CACHE  # noqa: E402
from modalbridge.testing import make_test_tone, make_test_video  # noqa: E402

TEXTS = ["a dog runs on the beach", "a red bus in a street", "a plate of food", "two people skiing"]


def chroma_store(client, name: str | None = None) -> ChromaVectorStore:
    name = name or f"test-{uuid.uuid4().hex[:12]}"
    return ChromaVectorStore(chroma_collection=client.create_collection(name, metadata={"hnsw:space": "cosine"}))


@pytest.fixture(scope="module")
def client():
    return chromadb.EphemeralClient()


@pytest.fixture(scope="module")
def mm_index(client, tiny_clip_path, image_paths):
    """Text nodes and image nodes (no text: a file name in metadata) in two Chroma collections, one model."""
    embed = MultimodalEmbedding(tiny_clip_path, normalize=True)
    loads = MODEL_CACHE.loads
    nodes = [TextNode(text=text, id_=f"text-{i}") for i, text in enumerate(TEXTS)] + [
        ImageNode(image_path=path, id_=f"image-{i}", metadata={"file": path.rsplit("/", 1)[-1]})
        for i, path in enumerate(image_paths[:6])
    ]
    storage = StorageContext.from_defaults(vector_store=chroma_store(client), image_store=chroma_store(client))
    index = MultiModalVectorStoreIndex(nodes, storage_context=storage, embed_model=embed, image_embed_model=embed)
    assert MODEL_CACHE.loads - loads <= 1  # embed_model and image_embed_model share one model
    assert index.image_embed_model.model is Embedder(tiny_clip_path).model
    return index, embed, image_paths[:6]


def test_query_engine_returns_source_nodes_in_the_rerankers_order(mm_index, tiny_qwen3vl_reranker_path):
    index, _, _ = mm_index
    rerank = MultimodalRerank(tiny_qwen3vl_reranker_path, top_n=4)
    retrieved = index.as_retriever(similarity_top_k=3, image_similarity_top_k=3).retrieve("a dog on a beach")
    assert sum(isinstance(n.node, ImageNode) for n in retrieved) == 3 and len(retrieved) == 6

    starts, ends = [], []

    class Collect(BaseEventHandler):
        def handle(self, event, **kwargs):
            if isinstance(event, ReRankStartEvent):
                starts.append(event)
            elif isinstance(event, ReRankEndEvent):
                ends.append(event)

    handler, debug = Collect(), LlamaDebugHandler()
    get_dispatcher().add_event_handler(handler)
    try:
        engine = index.as_query_engine(
            llm=MockLLM(),
            node_postprocessors=[rerank],
            similarity_top_k=3,
            image_similarity_top_k=3,
            callback_manager=CallbackManager([debug]),
        )
        response = engine.query("a dog on a beach")
    finally:
        get_dispatcher().event_handlers.remove(handler)

    core = Reranker(tiny_qwen3vl_reranker_path)
    assert rerank.reranker.model is core.model
    expected = core.rank("a dog on a beach", [node_to_item(n.node) for n in retrieved], top_n=4)
    assert [n.node_id for n in response.source_nodes] == [retrieved[hit.index].node_id for hit in expected]
    np.testing.assert_allclose([n.score for n in response.source_nodes], [hit.score for hit in expected], atol=1e-6)
    # Image nodes were scored on their images (they carry no text at all).
    assert any(isinstance(n.node, ImageNode) for n in response.source_nodes)

    assert len(starts) == len(ends) == 1
    assert {n.node_id for n in starts[0].nodes} == {n.node_id for n in retrieved}
    assert [n.node_id for n in ends[0].nodes] == [n.node_id for n in response.source_nodes]
    ((begin, end),) = debug.get_event_pairs(CBEventType.RERANKING)
    assert begin.payload["query_str"] == "a dog on a beach"
    assert [n.node_id for n in end.payload["nodes"]] == [n.node_id for n in response.source_nodes]


def test_text_to_image_retrieval_follows_the_embeddings(mm_index):
    index, embed, paths = mm_index
    retriever = index.as_retriever(image_similarity_top_k=4)
    hits = retriever.text_to_image_retrieve("a red bus")
    query = embed.embedder.embed_query("a red bus")
    images = embed.embedder.embed_documents([Image(p) for p in paths])
    order = np.argsort(-(images @ query), kind="stable")[:4]
    assert [n.node_id for n in hits] == [f"image-{i}" for i in order]
    assert all(isinstance(n.node, ImageNode) and n.node.image_path == paths[int(n.node_id[6:])] for n in hits)


def test_image_to_image_retrieval_finds_the_query_image_first(mm_index):
    index, _, paths = mm_index
    retriever = index.as_retriever(image_similarity_top_k=3)
    for i in (0, 3, 5):
        hits = retriever.image_to_image_retrieve(paths[i])
        assert hits[0].node_id == f"image-{i}"
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)


async def test_async_retrieval_equals_sync(mm_index):
    index, _, paths = mm_index
    retriever = index.as_retriever(similarity_top_k=2, image_similarity_top_k=2)
    sync = retriever.retrieve("a plate of food")
    out = await retriever.aretrieve("a plate of food")
    assert [n.node_id for n in out] == [n.node_id for n in sync]
    hits = await retriever.aimage_to_image_retrieve(paths[1])
    assert hits[0].node_id == "image-1"


def test_audio_nodes_in_a_persistent_chroma_vector_store_index(tmp_path, tiny_clap_path):
    """Audio nodes (LlamaIndex's own audio_resource) embedded by their sound, stored in Chroma on disk,
    reopened, and found by a sound and by text."""
    import soundfile

    embed = MultimodalEmbedding(tiny_clap_path, normalize=True)
    paths = []
    for frequency in (220, 440, 660, 880):  # clips up to CLAP's 1 s window embed deterministically
        paths.append(str(tmp_path / f"tone-{frequency}.wav"))
        soundfile.write(paths[-1], make_test_tone(0.8, 16_000, frequency), 16_000, subtype="FLOAT")
    # A Node, not a Document: vector stores rebuild a stored Document as a TextNode (its audio is lost).
    nodes = [Node(audio_resource=MediaResource(path=p), id_=f"sound-{i}") for i, p in enumerate(paths)]
    nodes.append(Document(text="a recording of a low hum", id_="text-0"))

    client = chromadb.PersistentClient(
        path=str(tmp_path / "db")
    )
    index = VectorStoreIndex.from_vector_store(chroma_store(client, "sounds"), embed_model=embed)
    index.insert_nodes(embed(nodes))  # the transformation embeds each node by its sound or its text

    reopened_client = chromadb.PersistentClient(
        path=str(tmp_path / "db")
    )
    reopened = VectorStoreIndex.from_vector_store(
        ChromaVectorStore(chroma_collection=reopened_client.get_collection("sounds")), embed_model=embed
    )
    retriever = reopened.as_retriever(similarity_top_k=2)
    for i in (0, 2):
        bundle = QueryBundle(query_str="", embedding=embed.get_audio_embedding(paths[i]))
        hits = retriever.retrieve(bundle)
        assert hits[0].node_id == f"sound-{i}"
        assert str(hits[0].node.audio_resource.path) == paths[i]  # the node comes back with its audio
    vectors = embed.embedder.embed_documents([node_to_item(n) for n in nodes])
    query = embed.embedder.embed_query("a low hum")
    hits = reopened.as_retriever(similarity_top_k=5).retrieve("a low hum")
    assert [n.node_id for n in hits] == [nodes[i].node_id for i in np.argsort(-(vectors @ query), kind="stable")]


def test_video_and_image_nodes_in_a_vector_store_index(client, tmp_path, tiny_qwen3vl_path, image_paths, video_path):
    embed = MultimodalEmbedding(tiny_qwen3vl_path)
    second_video = make_test_video(tmp_path / "other.mp4", color_shift=2)
    nodes = [
        Node(video_resource=MediaResource(path=video_path), id_="video-0"),
        Node(video_resource=MediaResource(path=second_video), id_="video-1"),
        ImageNode(image_path=image_paths[0], id_="image-0"),
        TextNode(text="a moving square", id_="text-0"),
    ]
    # VectorStoreIndex(nodes) skips nodes without text ("Some nodes are missing content, skipping them..."):
    # media nodes go in through insert_nodes, embedded by the transformation (each by its own medium).
    storage = StorageContext.from_defaults(vector_store=chroma_store(client))
    index = VectorStoreIndex([], storage_context=storage, embed_model=embed)
    index.insert_nodes(embed(nodes))
    retriever = index.as_retriever(similarity_top_k=4)
    for i, path in enumerate((video_path, second_video)):
        hits = retriever.retrieve(QueryBundle(query_str="", embedding=embed.get_video_embedding(path)))
        assert hits[0].node_id == f"video-{i}"
        assert isinstance(hits[0].node, Node) and str(hits[0].node.video_resource.path) == path
    hits = retriever.retrieve(QueryBundle(query_str="", embedding=embed.get_image_embedding(image_paths[0])))
    assert hits[0].node_id == "image-0"


def test_retriever_query_engine_multimodal_path(mm_index, tiny_qwen3vl_reranker_path):
    """The non-deprecated engine (LlamaIndex >= 0.14.23): RetrieverQueryEngine.from_args(..., multimodal=True)."""
    from llama_index.core.query_engine import RetrieverQueryEngine

    index, _, _ = mm_index
    rerank = MultimodalRerank(tiny_qwen3vl_reranker_path, top_n=3)
    retriever = index.as_retriever(similarity_top_k=2, image_similarity_top_k=2)
    retrieved = retriever.retrieve("food")
    engine = RetrieverQueryEngine.from_args(
        retriever, llm=MockLLM(is_chat_model=True), node_postprocessors=[rerank], multimodal=True
    )
    response = engine.query("food")
    expected = rerank.reranker.rank("food", [node_to_item(n.node) for n in retrieved], top_n=3)
    assert [n.node_id for n in response.source_nodes] == [retrieved[hit.index].node_id for hit in expected]


def test_example_runs_offline(tiny_clip_path, tiny_qwen3vl_reranker_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "llama_index_retrieve_rerank.py"
    spec = importlib.util.spec_from_file_location("llama_index_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    argv = ["--model", tiny_clip_path, "--reranker", tiny_qwen3vl_reranker_path, "--num-images", "5", "--k", "3"]
    assert example.main(argv) == 0
    out = capsys.readouterr().out
    assert "indexed 5 images and 3 notes" in out
    assert "query engine, reranked with" in out and "image query reranked (top 3):" in out
