"""One loaded model per full set of load settings, across every framework adapter."""

import pytest

from modalbridge import Embedder, Reranker, clear_model_cache
from modalbridge.chroma import MultimodalEmbeddingFunction
from modalbridge.langchain import MultimodalEmbeddings, MultimodalRerank as LangChainRerank
from modalbridge.llama_index import MultimodalEmbedding, MultimodalRerank as LlamaIndexRerank
from modalbridge.loading import MODEL_CACHE


@pytest.fixture(autouse=True)
def empty_cache():
    clear_model_cache()
    yield
    clear_model_cache()


def test_every_adapter_shares_one_embedding_model(tiny_clip_path):
    loads = MODEL_CACHE.loads
    chroma_fn = MultimodalEmbeddingFunction(tiny_clip_path, batch_size=8)
    langchain_embeddings = MultimodalEmbeddings(model_name=tiny_clip_path, normalize=True)
    llama_embedding = MultimodalEmbedding(model_name=tiny_clip_path, embed_batch_size=4)
    rebuilt = MultimodalEmbeddingFunction.build_from_config(chroma_fn.get_config())
    assert MODEL_CACHE.loads == loads  # nothing is loaded until used
    model = Embedder(tiny_clip_path).model
    assert chroma_fn.embedder.model is model
    assert rebuilt.embedder.model is model
    assert langchain_embeddings.embedder.model is model
    assert llama_embedding.embedder.model is model
    assert MODEL_CACHE.loads == loads + 1


def test_every_adapter_shares_one_reranker_and_other_settings_do_not(tiny_qwen3vl_reranker_path, tiny_qwen3vl_path):
    model = Reranker(tiny_qwen3vl_reranker_path).model
    assert LangChainRerank(model_name=tiny_qwen3vl_reranker_path, top_n=2).reranker.model is model
    assert LlamaIndexRerank(model=tiny_qwen3vl_reranker_path, top_n=2).reranker.model is model
    assert LlamaIndexRerank(model=tiny_qwen3vl_reranker_path, dtype="bfloat16").reranker.model is not model
    assert MultimodalEmbeddings(model_name=tiny_qwen3vl_path, dtype="bfloat16").embedder.model is not (
        MultimodalEmbedding(model_name=tiny_qwen3vl_path).embedder.model
    )
