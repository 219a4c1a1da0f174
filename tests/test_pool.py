"""device=[...]: one long-lived sentence-transformers pool per model, shared by calls and adapters.

Two CPU worker processes stand in for two GPUs. Starting a pool costs ~10 s here (each worker imports
torch and unpickles the model), so the embedder pool is started once for the whole module.
"""

import os

import numpy as np
import pytest
from sentence_transformers import CrossEncoder, SentenceTransformer

from modalbridge import Embedder, Image, Reranker, clear_model_cache
from modalbridge.chroma import MultimodalEmbeddingFunction
from modalbridge.langchain import MultimodalEmbeddings
from modalbridge.loading import MODEL_CACHE, LoadSettings
from modalbridge.pool import POOLS, get_pool

DEVICES = ["cpu", "cpu"]


@pytest.fixture(scope="module", autouse=True)
def stop_pools_after():
    clear_model_cache()
    yield
    clear_model_cache()


@pytest.fixture(scope="module")
def pooled(tiny_clip_path):
    return Embedder(tiny_clip_path, device=DEVICES, batch_size=4)


def test_the_pool_gives_the_single_process_vectors_and_starts_once_across_calls_and_adapters(
    pooled, tiny_clip_path, image_paths
):
    items = ["a dog on a beach", "two cats", *[Image(p) for p in image_paths[:6]]]
    direct = SentenceTransformer(tiny_clip_path, device="cpu")
    expected = np.concatenate(
        [direct.encode_document(items[:2], batch_size=4), direct.encode_document(image_paths[:6], batch_size=4)]
    )

    first = pooled.embed_documents(items)
    pool = get_pool("embedder", pooled.load_settings)
    assert pool.running and pool.starts == 1
    assert len(pool._pool["processes"]) == 2 and all(p.is_alive() for p in pool._pool["processes"])
    np.testing.assert_allclose(first, expected, atol=1e-5)

    # More calls, and two adapters built with the same settings: the same model, the same pool.
    second = pooled.embed_queries(items[2:])
    langchain = MultimodalEmbeddings(model_name=tiny_clip_path, device=DEVICES, batch_size=4)
    chroma = MultimodalEmbeddingFunction(tiny_clip_path, device=DEVICES, batch_size=4)
    from_langchain = langchain.embed_documents(["a dog on a beach", "two cats"])
    from_chroma = chroma([Image(p) for p in image_paths[:6]])
    assert langchain.embedder.model is pooled.model is chroma.embedder.model
    assert get_pool("embedder", pooled.load_settings) is pool and pool.starts == 1
    np.testing.assert_allclose(second, expected[2:], atol=1e-5)
    np.testing.assert_allclose(np.asarray(from_langchain), expected[:2], atol=1e-5)
    np.testing.assert_allclose(np.stack(from_chroma), expected[2:], atol=1e-5)


def test_the_device_list_is_part_of_the_model_key(pooled, tiny_clip_path):
    single = Embedder(tiny_clip_path, device="cpu")
    three = LoadSettings(tiny_clip_path, device=("cpu", "cpu", "cpu"))
    assert pooled.load_settings.key("embedder") != single.load_settings.key("embedder")
    assert pooled.load_settings.key("embedder") != three.key("embedder")
    assert LoadSettings(tiny_clip_path, device=DEVICES).key("embedder") == pooled.load_settings.key("embedder")
    assert pooled.load_settings.to_dict()["device"] == DEVICES
    assert Embedder.from_config(pooled.config()).load_settings == pooled.load_settings


@pytest.mark.parametrize(
    "device, message",
    [([], "non-empty list"), (["cpu", ""], "non-empty list"), (["auto", "cpu"], "not 'auto'"), (3, "device name")],
)
def test_bad_device_lists_are_refused(tiny_clip_path, device, message):
    with pytest.raises(ValueError, match=message):
        Embedder(tiny_clip_path, device=device)


def test_release_stops_the_workers(tiny_clip_path):
    embedder = Embedder(tiny_clip_path, device=DEVICES, batch_size=4)  # the module's pool (same settings)
    embedder.embed_documents(["warm"])
    pool = get_pool("embedder", embedder.load_settings)
    pids = [p.pid for p in pool._pool["processes"]]
    assert embedder.release()
    assert not pool.running and embedder.load_settings.key("embedder") not in POOLS
    assert not MODEL_CACHE.is_loaded("embedder", embedder.load_settings)
    for pid in pids:  # terminated and reaped
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_pooled_reranker_scores_like_the_cross_encoder(tiny_text_cross_encoder_path):
    documents = ["a dog runs on the beach", "stock prices fell", "a puppy plays in the sand", "rain tomorrow"]
    expected = CrossEncoder(tiny_text_cross_encoder_path, device="cpu").predict(
        [("dog on a beach", d) for d in documents], batch_size=2
    )
    reranker = Reranker(tiny_text_cross_encoder_path, device=["cpu"], batch_size=2)  # one worker: startup is slow
    try:
        scores = reranker.score("dog on a beach", documents)
        again = reranker.score("dog on a beach", documents[::-1])
        pool = get_pool("reranker", reranker.load_settings)
        assert pool.starts == 1
    finally:
        reranker.release()
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    np.testing.assert_allclose(again, expected[::-1], atol=1e-5)
    assert not pool.running
