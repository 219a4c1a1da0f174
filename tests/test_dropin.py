"""Drop-in compatibility, side by side with the real incumbent packages: the same constructor arguments
give the same vectors (and the same reranking) as langchain-huggingface's ``HuggingFaceEmbeddings``,
llama-index's ``HuggingFaceEmbedding`` and ``SentenceTransformerRerank``, and Chroma's
``SentenceTransformerEmbeddingFunction``. Real text model (all-MiniLM-L6-v2), tiny offline models."""

from __future__ import annotations

import numpy as np
import pytest
from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction
from langchain_huggingface import HuggingFaceEmbeddings
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.embeddings.huggingface import HuggingFaceEmbedding
from llama_index.postprocessor.sbert_rerank import SentenceTransformerRerank

from modalbridge.chroma import MultimodalEmbeddingFunction
from modalbridge.langchain import MultimodalEmbeddings
from modalbridge.llama_index import MultimodalEmbedding
from modalbridge.llama_index import MultimodalRerank as LlamaIndexRerank

ATOL = 1e-5
TEXTS = ["a dog runs on the beach", "a plate of pasta with tomato sauce", "the stock market fell today"]
QUERY = "an animal by the sea"


def test_langchain_takes_huggingface_embeddings_arguments(minilm_model_path, tmp_path):
    arguments = dict(
        model_name=minilm_model_path,
        cache_folder=str(tmp_path),
        model_kwargs={"device": "cpu", "model_kwargs": {"attn_implementation": "eager"}},
        encode_kwargs={"normalize_embeddings": True, "batch_size": 2},
        query_encode_kwargs={"normalize_embeddings": True, "prompt": "query: "},
        show_progress=False,
    )
    theirs, ours = HuggingFaceEmbeddings(**arguments), MultimodalEmbeddings(**arguments)
    np.testing.assert_allclose(ours.embed_documents(TEXTS), theirs.embed_documents(TEXTS), atol=ATOL)
    np.testing.assert_allclose(ours.embed_query(QUERY), theirs.embed_query(QUERY), atol=ATOL)
    # each incumbent argument became the modalbridge setting of that meaning
    core = ours.embedder.config()
    assert (core["device"], core["cache_folder"], core["model_kwargs"]) == ("cpu", str(tmp_path), {"attn_implementation": "eager"})
    assert (core["normalize"], core["batch_size"], core["query_prompt"], core["document_prompt"]) == (True, 2, "query: ", None)


def test_langchain_defaults_and_refusals_match_the_incumbent(minilm_model_path):
    theirs, ours = HuggingFaceEmbeddings(model_name=minilm_model_path), MultimodalEmbeddings(model_name=minilm_model_path)
    np.testing.assert_allclose(ours.embed_documents(TEXTS), theirs.embed_documents(TEXTS), atol=ATOL)
    np.testing.assert_allclose(ours.embed_query(QUERY), theirs.embed_query(QUERY), atol=ATOL)
    # query_encode_kwargs replace encode_kwargs for queries there: a normalization given only for documents
    # cannot be reproduced by one normalize setting, so it is refused rather than silently changed
    with pytest.raises(ValueError, match=r"normalize is given twice with different values: True \(encode_kwargs\)"):
        MultimodalEmbeddings(
            model_name=minilm_model_path, encode_kwargs={"normalize_embeddings": True}, query_encode_kwargs={"prompt": "q: "}
        )
    with pytest.raises(ValueError, match=r"model_kwargs\['token'\]: no modalbridge setting takes this SentenceTransformer argument"):
        MultimodalEmbeddings(model_name=minilm_model_path, model_kwargs={"token": "secret"})
    with pytest.raises(ValueError, match=r"encode_kwargs\['output_value'\]: no modalbridge setting takes this encode\(\) argument"):
        MultimodalEmbeddings(model_name=minilm_model_path, encode_kwargs={"output_value": "token_embeddings"})
    # multi_process runs a pool over sentence-transformers' default devices (4 CPU processes here)
    pooled = MultimodalEmbeddings(model_name=minilm_model_path, multi_process=True)
    assert pooled.embedder.load_settings.device == ("cpu",) * 4


def test_llama_index_takes_huggingface_embedding_arguments(minilm_model_path, tmp_path):
    arguments = dict(
        model_name=minilm_model_path,
        max_length=16,  # short enough to truncate the longest text: the setting is really applied
        query_instruction="query: ",
        text_instruction="passage: ",
        embed_batch_size=2,
        device="cpu",
        cache_folder=str(tmp_path),
        trust_remote_code=False,
        show_progress_bar=False,
    )
    theirs, ours = HuggingFaceEmbedding(**arguments), MultimodalEmbedding(**arguments)
    long_text = " ".join(["word"] * 40)
    texts = [*TEXTS, long_text]
    np.testing.assert_allclose(ours.get_text_embedding_batch(texts), theirs.get_text_embedding_batch(texts), atol=ATOL)
    np.testing.assert_allclose(ours.get_query_embedding(QUERY), theirs.get_query_embedding(QUERY), atol=ATOL)
    np.testing.assert_allclose(ours.get_text_embedding(TEXTS[0]), theirs.get_text_embedding(TEXTS[0]), atol=ATOL)
    assert ours.embedder.model.max_seq_length == 16
    # normalize is on by default, as there
    theirs, ours = HuggingFaceEmbedding(model_name=minilm_model_path, device="cpu"), MultimodalEmbedding(model_name=minilm_model_path, device="cpu")
    assert ours.normalize is True
    np.testing.assert_allclose(ours.get_text_embedding_batch(TEXTS), theirs.get_text_embedding_batch(TEXTS), atol=ATOL)
    assert np.allclose(np.linalg.norm(ours.get_text_embedding_batch(TEXTS), axis=1), 1.0, atol=1e-5)


def test_llama_index_images_equal_the_incumbent(tiny_clip_path, image_paths):
    theirs = HuggingFaceEmbedding(model_name=tiny_clip_path, device="cpu", normalize=False)
    ours = MultimodalEmbedding(model_name=tiny_clip_path, device="cpu", normalize=False)
    np.testing.assert_allclose(ours.get_image_embedding(image_paths[0]), theirs.get_image_embedding(image_paths[0]), atol=ATOL)
    np.testing.assert_allclose(
        ours.get_image_embedding_batch(image_paths[:3]), theirs.get_image_embedding_batch(image_paths[:3]), atol=ATOL
    )


def test_llama_index_pool_arguments_are_routed_not_ignored(minilm_model_path):
    pooled = MultimodalEmbedding(model_name=minilm_model_path, parallel_process=True, target_devices=["cpu", "cpu"])
    assert pooled.embedder.load_settings.device == ("cpu", "cpu")
    default_pool = MultimodalEmbedding(model_name=minilm_model_path, parallel_process=True)
    assert default_pool.embedder.load_settings.device == ("cpu",) * 4
    with pytest.raises(ValueError, match="target_devices is set but parallel_process is off"):
        MultimodalEmbedding(model_name=minilm_model_path, target_devices=["cpu", "cpu"])
    with pytest.raises(ValueError, match="bogus_setting"):
        MultimodalEmbedding(model_name=minilm_model_path, query_instruction="query: ", bogus_setting=3)


def test_llama_index_rerank_takes_sentence_transformer_rerank_arguments(tiny_text_cross_encoder_path):
    def nodes():  # fresh ones each time: SentenceTransformerRerank rewrites its input nodes' scores and metadata
        return [NodeWithScore(node=TextNode(text=text, id_=f"n{i}"), score=0.5 - i / 10) for i, text in enumerate(TEXTS)]

    arguments = dict(model=tiny_text_cross_encoder_path, top_n=2, device="cpu", keep_retrieval_score=True)
    theirs = SentenceTransformerRerank(**arguments).postprocess_nodes(nodes(), QueryBundle(QUERY))
    ours = LlamaIndexRerank(**arguments).postprocess_nodes(nodes(), QueryBundle(QUERY))
    assert [n.node.node_id for n in ours] == [n.node.node_id for n in theirs] and len(ours) == 2
    np.testing.assert_allclose([n.score for n in ours], [n.score for n in theirs], atol=ATOL)
    assert [n.node.metadata["retrieval_score"] for n in ours] == [n.node.metadata["retrieval_score"] for n in theirs]
    # the default top_n is theirs too
    assert len(LlamaIndexRerank(model=tiny_text_cross_encoder_path, device="cpu").postprocess_nodes(nodes(), QueryBundle(QUERY))) == 2
    rerank = LlamaIndexRerank(model=tiny_text_cross_encoder_path, cross_encoder_kwargs={"max_length": 32})
    assert rerank.reranker.load_settings.max_length == 32


def test_chroma_function_takes_sentence_transformer_embedding_function_arguments(minilm_model_path):
    arguments = dict(model_name=minilm_model_path, device="cpu", normalize_embeddings=True, local_files_only=True)
    theirs, ours = SentenceTransformerEmbeddingFunction(**arguments), MultimodalEmbeddingFunction(**arguments)
    np.testing.assert_allclose(np.stack(ours(TEXTS)), np.stack(theirs(TEXTS)), atol=ATOL)
