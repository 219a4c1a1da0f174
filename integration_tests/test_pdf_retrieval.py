"""Visual document retrieval end to end: slide decks written as real PDFs, searched page by page through
Chroma (add_pdf, the data loader, reranking), LangChain (PdfPageLoader into langchain-chroma), LlamaIndex
(PdfPageReader into MultiModalVectorStoreIndex) and the command line, with the shipped demo models (which
know the slides' pictures, so the right page must come first)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest

import chromadb

from modalbridge import Embedder, PdfPage, Reranker
from modalbridge.chroma import MultimodalDataLoader, MultimodalEmbeddingFunction, add_pdf, rerank_query_result
from modalbridge.demo import demo_embedder_path, demo_reranker_path
from modalbridge.demo import synthetic as S
from modalbridge.media import pdf_pages

SEED = 31
TARGET = 4  # the page each query describes


@pytest.fixture(scope="module")
def deck(tmp_path_factory) -> tuple[str, list]:
    """A 6-slide deck of distinct pictures, and the specs of its slides."""
    specs = S.sample_specs(S.image_combinations(), 6, SEED)
    path = S.write_slide_pdf(tmp_path_factory.mktemp("decks") / "deck.pdf", specs, SEED, title="test deck")
    return str(path), specs


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(demo_embedder_path(), device="cpu")


@pytest.fixture(scope="module")
def reranker() -> Reranker:
    return Reranker(demo_reranker_path(), device="cpu")


def test_chroma_add_pdf_query_and_rerank(deck, embedder, reranker, tmp_path):
    path, specs = deck
    copy = str(tmp_path / "deck.pdf")
    shutil.copy(path, copy)
    collection = chromadb.EphemeralClient().create_collection(
        f"pdf-{uuid.uuid4().hex[:8]}",
        embedding_function=MultimodalEmbeddingFunction.from_embedder(embedder),
        data_loader=MultimodalDataLoader(),
    )
    ids = add_pdf(collection, copy, metadata={"deck": "test"}, batch_size=4)
    assert ids == [f"{copy}#page={n}" for n in range(1, 7)]
    stored = collection.get(ids=ids, include=["metadatas", "uris", "embeddings"])
    assert stored["uris"] == ids
    assert [m for m in stored["metadatas"]] == [{"deck": "test", "source": copy, "page": n} for n in range(1, 7)]
    np.testing.assert_allclose(stored["embeddings"], embedder.embed_documents(pdf_pages(copy)), atol=1e-5)

    caption = specs[TARGET - 1].caption
    hits = collection.query(query_texts=[caption], n_results=3, include=["uris", "metadatas", "data", "distances"])
    assert hits["uris"][0][0] == f"{copy}#page={TARGET}" and hits["metadatas"][0][0]["page"] == TARGET
    assert hits["data"][0][0] == PdfPage(copy, page=TARGET)  # the loader hands pages over unrendered

    reranked = rerank_query_result(hits, caption, reranker)
    pages = [PdfPage(copy, page=m["page"]) for m in hits["metadatas"][0]]
    expected = reranker.rank(caption, pages)
    assert reranked.ids == [hits["ids"][0][hit.index] for hit in expected]
    np.testing.assert_allclose(reranked.scores, [hit.score for hit in expected], atol=1e-6)

    # the file shrinks to 2 pages: adding it again updates those and deletes the rest
    S.write_slide_pdf(copy, specs[:2], SEED + 1)
    assert add_pdf(collection, copy) == ids[:2]
    assert collection.count() == 2
    assert collection.get(ids=ids[:1], include=["metadatas"])["metadatas"][0]["page"] == 1


def test_langchain_loader_vector_store_and_rerank(deck, embedder, reranker):
    from langchain_chroma import Chroma

    from modalbridge.langchain import MultimodalEmbeddings, MultimodalRerank, PdfPageLoader

    path, specs = deck
    docs = PdfPageLoader(path).load()
    assert [d.page_content for d in docs] == [f"{path}#page={n}" for n in range(1, 7)]
    assert docs[2].metadata == {"source": path, "page": 3, "image": f"{path}#page=3"}
    assert [d.metadata["page"] for d in PdfPageLoader(path, pages=[5, 2]).lazy_load()] == [5, 2]

    embeddings = MultimodalEmbeddings(model_name=demo_embedder_path(), device="cpu", document_modality="image")
    np.testing.assert_allclose(
        embeddings.embed_documents([d.page_content for d in docs]), embedder.embed_documents(pdf_pages(path)), atol=1e-6
    )
    store = Chroma.from_documents(docs, embeddings, collection_name=f"lc-{uuid.uuid4().hex[:8]}")
    caption = specs[TARGET - 1].caption
    found = store.similarity_search(caption, k=3)
    assert found[0].metadata["page"] == TARGET

    compressor = MultimodalRerank(demo_reranker_path(), device="cpu", top_n=2)
    best = compressor.compress_documents(found, caption)
    expected = reranker.rank(caption, [PdfPage(path, page=d.metadata["page"]) for d in found], top_n=2)
    assert [d.metadata["page"] for d in best] == [found[hit.index].metadata["page"] for hit in expected]
    np.testing.assert_allclose([d.metadata["relevance_score"] for d in best], [hit.score for hit in expected], atol=1e-6)


def test_llama_index_reader_index_and_rerank(deck, embedder, reranker):
    from llama_index.core.indices import MultiModalVectorStoreIndex
    from llama_index.core.schema import ImageNode, QueryBundle

    from modalbridge.llama_index import MultimodalEmbedding, MultimodalRerank, PdfPageReader

    path, specs = deck
    nodes = PdfPageReader().load_data(path, extra_info={"deck": "test"})
    assert all(isinstance(n, ImageNode) for n in nodes)
    assert [n.node_id for n in nodes] == [f"{path}#page={n}" for n in range(1, 7)]
    assert nodes[1].metadata == {"deck": "test", "source": path, "page": 2}

    embed = MultimodalEmbedding(demo_embedder_path(), device="cpu")
    index = MultiModalVectorStoreIndex(nodes, embed_model=embed, image_embed_model=embed)
    caption = specs[TARGET - 1].caption
    hits = index.as_retriever(image_similarity_top_k=3).text_to_image_retrieve(caption)
    assert hits[0].node.metadata["page"] == TARGET
    stored = index.image_vector_store.get(hits[0].node.node_id)  # the default SimpleVectorStore
    page_vector = embedder.embed_documents([PdfPage(path, page=TARGET)])[0]
    assert embed.normalize  # LlamaIndex's default, as HuggingFaceEmbedding's
    np.testing.assert_allclose(stored, page_vector / np.linalg.norm(page_vector), atol=1e-5)

    rerank = MultimodalRerank.from_reranker(reranker, top_n=3)
    reranked = rerank.postprocess_nodes(hits, QueryBundle(caption))
    expected = reranker.rank(caption, [PdfPage(path, page=h.node.metadata["page"]) for h in hits], top_n=3)
    assert [n.node.node_id for n in reranked] == [hits[hit.index].node.node_id for hit in expected]
    np.testing.assert_allclose([n.score for n in reranked], [hit.score for hit in expected], atol=1e-6)


def test_command_line_indexes_pages_and_links_them(deck, tmp_path, capsys):
    from modalbridge import testing
    from modalbridge.cli import main

    path, specs = deck
    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(path, folder / "deck.pdf")
    testing.make_encrypted_pdf(folder / "locked.pdf")
    db = str(tmp_path / "db")
    deck_pdf = str((folder / "deck.pdf").resolve())

    assert main(["index", str(folder), "--db", db, "-q", "--device", "cpu"]) == 1  # the locked file fails alone
    out = capsys.readouterr().out
    assert "6 added, 0 updated, 0 unchanged, 1 failed" in out
    assert f"{(folder / 'locked.pdf').resolve()}: cannot read the PDF: it is encrypted" in out

    client = chromadb.PersistentClient(path=db, settings=chromadb.Settings(anonymized_telemetry=False))
    records = client.get_collection("modalbridge").get(include=["metadatas", "uris"])
    by_id = dict(zip(records["ids"], records["metadatas"]))
    assert sorted(by_id) == sorted(f"{deck_pdf}#page={n}" for n in range(1, 7))
    assert by_id[f"{deck_pdf}#page=2"]["source"] == deck_pdf and by_id[f"{deck_pdf}#page=2"]["page"] == 2

    assert main(["index", str(folder / "deck.pdf"), "--db", db, "-q", "--device", "cpu"]) == 0
    assert "0 added, 0 updated, 6 unchanged, 0 failed" in capsys.readouterr().out

    html = tmp_path / "results.html"
    caption = specs[TARGET - 1].caption
    assert main(["search", caption, "--db", db, "-k", "3", "--html", str(html), "--device", "cpu"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split()[-1] == f"{deck_pdf}#page={TARGET}"
    page = html.read_text()
    assert f'<a class="page" href="docs/deck.pdf#page={TARGET}"><img class="thumb" alt="deck.pdf, page {TARGET}"' in page

    # a changed file with fewer pages: its pages are embedded again and the missing ones removed
    S.write_slide_pdf(folder / "deck.pdf", specs[:3], SEED + 1)
    assert main(["index", str(folder / "deck.pdf"), "--db", db, "-q", "--device", "cpu"]) == 0
    assert "0 added, 3 updated, 0 unchanged, 0 failed" in capsys.readouterr().out
    assert sorted(client.get_collection("modalbridge").get()["ids"]) == sorted(f"{deck_pdf}#page={n}" for n in range(1, 4))
