"""LangChain end to end: an LCEL chain (retriever -> reranker -> prompt -> fake chat model), text->image
retrieval through langchain_chroma.Chroma (add_images, by image, by text) and InMemoryVectorStore, and
reranking of the retrieved images. The tiny models are random, so the checks are exact: results equal the
core's, an image queried by itself comes first, reranked order equals Reranker.rank."""

import base64
import uuid

import numpy as np
import pytest
import soundfile as sf
from langchain_chroma import Chroma
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore

from modalbridge import Audio, Embedder, Image, Reranker, testing
from modalbridge.langchain import MultimodalEmbeddings, MultimodalRerank

CORPUS = [
    "The cheetah is the fastest land animal, reaching 100 km/h.",
    "Snails move slowly and carry their shells.",
    "A kitchen has an oven, a sink and a fridge.",
    "Falcons dive faster than any other bird.",
    "Bicycles have two wheels and pedals.",
    "Lions hunt in groups on the savanna.",
    "The tortoise won the race against the hare.",
]


def b64(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode("utf-8")


def format_docs(documents):
    return "\n\n".join(d.page_content for d in documents)


@pytest.fixture(scope="module")
def chroma_images(tiny_clip_path, image_paths):
    embeddings = MultimodalEmbeddings(model_name=tiny_clip_path, normalize=True)
    store = Chroma(collection_name=f"lc-images-{uuid.uuid4().hex[:8]}", embedding_function=embeddings)
    uris = image_paths[:8]
    ids = store.add_images(uris=uris, metadatas=[{"image": u} for u in uris], ids=[f"img{i}" for i in range(8)])
    assert ids == [f"img{i}" for i in range(8)]
    yield store, embeddings, uris
    store.delete_collection()


def test_lcel_chain_prompt_gets_the_reranked_context(minilm_model_path, tiny_text_cross_encoder_path):
    question = "Which animal is the fastest?"
    store = InMemoryVectorStore(MultimodalEmbeddings(model_name=minilm_model_path))
    store.add_documents([Document(page_content=t, metadata={"n": i}) for i, t in enumerate(CORPUS)])
    base = store.as_retriever(search_kwargs={"k": 5})
    reranker = MultimodalRerank(model_name=tiny_text_cross_encoder_path, top_n=3)
    retriever = ContextualCompressionRetriever(base_compressor=reranker, base_retriever=base)

    prompts = []

    def tap(prompt_value):
        prompts.append(prompt_value.to_string())
        return prompt_value

    prompt = ChatPromptTemplate.from_messages(
        [("system", "Answer from this context only:\n{context}"), ("human", "{question}")]
    )
    chain = (
        {"context": retriever | RunnableLambda(format_docs), "question": RunnablePassthrough()}
        | prompt
        | RunnableLambda(tap)
        | FakeListChatModel(responses=["The cheetah."])
        | StrOutputParser()
    )
    assert chain.invoke(question) == "The cheetah."

    retrieved = [d.page_content for d in base.invoke(question)]
    assert CORPUS[0] in retrieved  # the real MiniLM finds the cheetah sentence
    ranked = Reranker(tiny_text_cross_encoder_path).rank(question, retrieved, top_n=3)
    expected = [retrieved[hit.index] for hit in ranked]
    (text,) = prompts
    assert "Answer from this context only:\n" + "\n\n".join(expected) + "\nHuman: " + question in text
    positions = [text.index(t) for t in expected]
    assert positions == sorted(positions)
    reranked = retriever.invoke(question)
    assert [d.page_content for d in reranked] == expected
    scores = [d.metadata["relevance_score"] for d in reranked]
    assert scores == sorted(scores, reverse=True)


async def test_lcel_chain_async(minilm_model_path, tiny_text_cross_encoder_path):
    store = InMemoryVectorStore(MultimodalEmbeddings(model_name=minilm_model_path))
    await store.aadd_documents([Document(page_content=t) for t in CORPUS])
    retriever = ContextualCompressionRetriever(
        base_compressor=MultimodalRerank(model_name=tiny_text_cross_encoder_path, top_n=2),
        base_retriever=store.as_retriever(search_kwargs={"k": 4}),
    )
    question = "a slow animal"
    assert [d.page_content for d in await retriever.ainvoke(question)] == [
        d.page_content for d in retriever.invoke(question)
    ]


def test_chroma_add_images_and_search_by_image(chroma_images):
    store, embeddings, uris = chroma_images
    for i in (0, 3, 7):
        (top,) = store.similarity_search_by_image(uri=uris[i], k=1)
        assert top.metadata["image"] == uris[i]
        assert top.page_content == b64(uris[i])  # what Chroma.add_images stores
    # similarity_search_by_image_with_relevance_score does not unwrap embed_image's list in langchain-chroma
    # 1.1.0 (langchain-ai/langchain#33851); searching by the image's vector is the equivalent:
    ((top, distance),) = store.similarity_search_by_vector_with_relevance_scores(
        embeddings.embed_image(uris=[uris[5]])[0], k=1
    )
    assert top.metadata["image"] == uris[5] and distance == pytest.approx(0.0, abs=1e-4)


def test_chroma_text_to_image_order_equals_core(chroma_images, tiny_clip_path):
    store, embeddings, uris = chroma_images
    core = Embedder(tiny_clip_path, normalize=True)
    assert embeddings._embedder.model is core.model
    query = "a dog on a sofa"
    hits = store.similarity_search(query, k=4)
    distances = np.linalg.norm(core.embed_documents([Image(u) for u in uris]) - core.embed_query(query), axis=1)
    assert [d.metadata["image"] for d in hits] == [uris[i] for i in np.argsort(distances)[:4]]
    by_vector = store.similarity_search_by_vector(embeddings.embed_query(query), k=4)
    assert [d.id for d in by_vector] == [d.id for d in hits]


@pytest.mark.parametrize("how", ["image_base64", "metadata"])
def test_chroma_images_reranked_in_compression_retriever(chroma_images, tiny_qwen3vl_reranker_path, how):
    store, _, uris = chroma_images
    fields = {"page_content_modality": "image_base64", "image_key": None} if how == "image_base64" else {}
    reranker = MultimodalRerank(model_name=tiny_qwen3vl_reranker_path, top_n=3, **fields)
    base = store.as_retriever(search_kwargs={"k": 5})
    retriever = ContextualCompressionRetriever(base_compressor=reranker, base_retriever=base)
    query = "a dog on a sofa"
    retrieved = [d.metadata["image"] for d in base.invoke(query)]
    expected = Reranker(tiny_qwen3vl_reranker_path).rank(query, [Image(u) for u in retrieved], top_n=3)
    result = retriever.invoke(query)
    assert [d.metadata["image"] for d in result] == [retrieved[hit.index] for hit in expected]
    assert [d.metadata["relevance_score"] for d in result] == pytest.approx([hit.score for hit in expected], abs=1e-6)


def test_in_memory_store_text_to_image(tiny_clip_path, image_paths):
    embeddings = MultimodalEmbeddings(model_name=tiny_clip_path, document_modality="image")
    store = InMemoryVectorStore(embeddings)  # page_content is the image path; add_texts embeds the files
    uris = image_paths[:8]
    store.add_texts(uris, metadatas=[{"n": i} for i in range(8)])
    core = Embedder(tiny_clip_path)
    images = core.embed_documents([Image(u) for u in uris])
    query = "two people riding bicycles"
    q = core.embed_query(query)
    cosine = images @ q / (np.linalg.norm(images, axis=1) * np.linalg.norm(q))
    hits = store.similarity_search_with_score(query, k=3)
    assert [d.page_content for d, _ in hits] == [uris[i] for i in np.argsort(-cosine)[:3]]
    assert [s for _, s in hits] == pytest.approx(sorted(cosine, reverse=True)[:3], abs=1e-5)
    for i in (1, 6):  # an image queried by itself comes first
        (top,) = store.similarity_search_by_vector(embeddings.embed_image(uris=[uris[i]])[0], k=1)
        assert top.page_content == uris[i] and top.metadata == {"n": i}


def test_in_memory_store_audio(tiny_clap_path, tmp_path):
    paths = []
    for frequency in (220.0, 440.0, 880.0, 1760.0):
        path = tmp_path / f"tone{int(frequency)}.wav"
        sf.write(path, testing.make_test_tone(0.5, 16_000, frequency), 16_000)
        paths.append(str(path))
    embeddings = MultimodalEmbeddings(model_name=tiny_clap_path, document_modality="audio")
    store = InMemoryVectorStore(embeddings)
    store.add_texts(paths)
    for i, path in enumerate(paths):
        (top,) = store.similarity_search_by_vector(embeddings.embed_audio(uris=[path])[0], k=1)
        assert top.page_content == path
    np.testing.assert_array_equal(
        np.array(embeddings.embed_audio(uris=paths), dtype=np.float32),
        Embedder(tiny_clap_path).embed_documents([Audio(p) for p in paths]),
    )
