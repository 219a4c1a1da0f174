"""Late interaction through LangChain and LlamaIndex: retrievers over a LateInteractionCollection and MaxSim
rerankers after a single-vector retriever, with real framework objects, against the core's results."""

from __future__ import annotations

import chromadb
import numpy as np
import pytest
from PIL import Image as PILImage

from modalbridge import Image
from modalbridge.chroma import LateInteractionCollection
from modalbridge.multivector import MultiVectorEmbedder

TEXTS = ["a red square on grey", "two blue circles", "a green triangle", "yellow stripes", "a black dot"]


@pytest.fixture(scope="module")
def colqwen(tiny_colqwen2_path):
    return MultiVectorEmbedder(tiny_colqwen2_path, device="cpu")


@pytest.fixture(scope="module")
def picture_paths(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(5)
    paths = []
    for k in range(6):
        paths.append(str(folder / f"picture{k}.png"))
        PILImage.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def pages(colqwen, picture_paths, tmp_path_factory):
    client = chromadb.PersistentClient(str(tmp_path_factory.mktemp("db")))
    pages = LateInteractionCollection.create(client, "pages", colqwen, repetitions=4)
    ids = [f"img{k}" for k in range(len(picture_paths))] + [f"txt{k}" for k in range(len(TEXTS))]
    items = [Image(p) for p in picture_paths] + TEXTS
    pages.upsert(ids, items, metadatas=[{"kind": "image"}] * len(picture_paths) + [{"kind": "text"}] * len(TEXTS))
    return pages


def test_langchain_retriever_returns_the_collections_maxsim_ranking(pages):
    from modalbridge.langchain import LateInteractionRetriever

    retriever = LateInteractionRetriever(collection=pages, k=4, candidates=11)
    documents = retriever.invoke("a red square")
    expected = pages.query("a red square", n_results=4, candidates=11)
    assert [d.id for d in documents] == expected.ids
    assert [d.metadata["score"] for d in documents] == expected.scores
    for document, uri, text in zip(documents, expected.uris, expected.documents):
        assert document.page_content == (text if text is not None else uri)
        assert document.metadata.get("uri") == uri
    images = LateInteractionRetriever(collection=pages, k=3, candidates=11, where={"kind": "image"}).invoke("a red square")
    assert [d.id for d in images] == pages.query("a red square", n_results=3, candidates=11, where={"kind": "image"}).ids
    assert all(d.id.startswith("img") for d in images)
    with pytest.raises(TypeError, match="must be a LateInteractionCollection"):
        LateInteractionRetriever(collection=pages.collection)


def test_langchain_maxsim_rerank_after_a_single_vector_retriever(colqwen, tiny_clip_path, tmp_path):
    from langchain_chroma import Chroma
    from langchain_classic.retrievers import ContextualCompressionRetriever

    from modalbridge.langchain import MaxSimRerank, MultimodalEmbeddings

    store = Chroma(
        collection_name="texts",
        embedding_function=MultimodalEmbeddings(model_name=tiny_clip_path, device="cpu"),
        client=chromadb.PersistentClient(str(tmp_path / "db")),
    )
    store.add_texts(TEXTS, ids=[f"t{k}" for k in range(len(TEXTS))])
    rerank = MaxSimRerank(model_name=colqwen.load_settings.model_name_or_path, device="cpu", top_n=3)
    assert rerank.reranker.model is colqwen.model  # one shared model
    retriever = ContextualCompressionRetriever(base_compressor=rerank, base_retriever=store.as_retriever(search_kwargs={"k": 5}))
    documents = retriever.invoke("blue circles")
    candidates = [d.page_content for d in store.similarity_search("blue circles", k=5)]
    scores = colqwen.model.similarity([colqwen.embed_query("blue circles")], colqwen.embed_documents(candidates)).numpy()[0]
    order = np.argsort(-scores, kind="stable")[:3]
    assert [d.page_content for d in documents] == [candidates[i] for i in order]
    assert [d.metadata["relevance_score"] for d in documents] == pytest.approx(scores[order].tolist(), rel=1e-6)
    with pytest.raises(ValueError, match="MaxSimRerank does not take max_length"):
        MaxSimRerank(model_name=colqwen.load_settings.model_name_or_path, max_length=64)


def test_llama_index_retriever_returns_text_and_image_nodes(pages, picture_paths):
    from llama_index.core.schema import ImageNode, QueryBundle, TextNode

    from modalbridge.llama_index import LateInteractionRetriever

    retriever = LateInteractionRetriever(pages, similarity_top_k=11, candidates=11)
    nodes = retriever.retrieve("two blue circles")
    expected = pages.query("two blue circles", n_results=11, candidates=11)
    assert [n.node.node_id for n in nodes] == expected.ids and [n.score for n in nodes] == expected.scores
    for hit in nodes:
        if hit.node.node_id.startswith("img"):
            assert isinstance(hit.node, ImageNode) and hit.node.image_path in picture_paths
        else:
            assert type(hit.node) is TextNode and hit.node.text in TEXTS
    # an image query (QueryBundle.image_path) goes through the same core path
    by_image = retriever.retrieve(QueryBundle(query_str="", image_path=picture_paths[2]))
    assert [n.node.node_id for n in by_image] == pages.query(Image(picture_paths[2]), n_results=11, candidates=11).ids


def test_llama_index_maxsim_rerank_postprocessor(colqwen, picture_paths):
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.instrumentation.events.rerank import ReRankEndEvent
    from llama_index.core.schema import ImageNode, NodeWithScore, TextNode

    from modalbridge.llama_index import MaxSimRerank

    class Events(BaseEventHandler):
        seen: list = []

        def handle(self, event, **kwargs):
            self.seen.append(type(event).__name__)

    handler = Events()
    get_dispatcher("modalbridge.llama_index").add_event_handler(handler)
    nodes = [NodeWithScore(node=ImageNode(image_path=p, id_=f"i{k}"), score=0.5) for k, p in enumerate(picture_paths[:4])]
    rerank = MaxSimRerank(colqwen.load_settings.model_name_or_path, device="cpu", top_n=2)
    reranked = rerank.postprocess_nodes(nodes, query_str="yellow stripes")
    scores = colqwen.score(colqwen.embed_query("yellow stripes"), colqwen.embed_documents([Image(p) for p in picture_paths[:4]]))
    order = np.argsort(-scores, kind="stable")[:2]
    assert [n.node.node_id for n in reranked] == [f"i{k}" for k in order]
    assert [n.score for n in reranked] == pytest.approx(scores[order].tolist(), rel=1e-6)
    assert "ReRankEndEvent" in handler.seen and ReRankEndEvent.__name__ == "ReRankEndEvent"
    text_nodes = [NodeWithScore(node=TextNode(text=t, id_=f"t{k}"), score=0.0) for k, t in enumerate(TEXTS)]
    assert [n.node.text for n in rerank.postprocess_nodes(text_nodes, query_str="a dot")] == [
        TEXTS[hit.index] for hit in colqwen.rank("a dot", TEXTS, top_n=2)
    ]
    with pytest.raises(ValueError, match="MaxSimRerank does not take prompt"):
        MaxSimRerank(colqwen.load_settings.model_name_or_path, prompt="Query: ")
    assert MaxSimRerank.class_name() == "ModalbridgeMaxSimRerank"
