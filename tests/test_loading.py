"""The shared model cache: one model per full set of load settings, lazy, thread-safe, releasable."""

import threading

import pytest

from modalbridge import Embedder, LoadSettings, ModelLoadError, Reranker, clear_model_cache
from modalbridge.loading import MODEL_CACHE, resolve_device


@pytest.fixture(autouse=True)
def empty_cache():
    clear_model_cache()
    yield
    clear_model_cache()


def test_constructing_loads_nothing(minilm_model_path):
    loads = MODEL_CACHE.loads
    embedder = Embedder(minilm_model_path)
    Reranker(minilm_model_path)
    Embedder.from_config(embedder.config())
    assert MODEL_CACHE.loads == loads
    assert not embedder.is_loaded


def test_same_load_settings_share_one_model_whatever_the_encode_settings(minilm_model_path):
    first = Embedder(minilm_model_path, batch_size=4, normalize=True)
    second = Embedder(minilm_model_path, device="auto", batch_size=64, query_prompt="query: ")
    assert first.model is second.model
    # "auto" is keyed by the device it resolves to.
    assert Embedder(minilm_model_path, device=resolve_device("auto")).model is first.model
    # A rebuilt-from-config embedder shares too (Chroma rebuilds functions from their config often).
    assert Embedder.from_config(first.config()).model is first.model


def test_different_load_settings_never_share(minilm_model_path, tiny_text_cross_encoder_path):
    base = Embedder(minilm_model_path).model
    assert Embedder(minilm_model_path, dtype="bfloat16").model is not base
    assert Embedder(minilm_model_path, model_kwargs={"attn_implementation": "eager"}).model is not base
    assert Embedder(minilm_model_path, config_kwargs={"hidden_dropout_prob": 0.2}).model is not base
    # The same folder as a reranker is a different kind of model.
    assert Reranker(tiny_text_cross_encoder_path).model is not Embedder(tiny_text_cross_encoder_path).model
    assert Reranker(tiny_text_cross_encoder_path, max_length=16).model is not Reranker(tiny_text_cross_encoder_path).model


def test_dtype_setting_reaches_the_model(minilm_model_path):
    import torch

    model = Embedder(minilm_model_path, dtype="bfloat16").model
    assert next(model.parameters()).dtype == torch.bfloat16


def test_eight_threads_cause_one_load(minilm_model_path):
    loads = MODEL_CACHE.loads
    barrier = threading.Barrier(8)
    models = []

    def worker():
        barrier.wait()
        models.append(Embedder(minilm_model_path).model)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(models) == 8
    assert all(model is models[0] for model in models)
    assert MODEL_CACHE.loads == loads + 1


def test_release_and_clear(minilm_model_path):
    embedder = Embedder(minilm_model_path)
    first = embedder.model
    assert embedder.release() is True
    assert not embedder.is_loaded
    assert embedder.release() is False
    second = embedder.model
    assert second is not first
    assert clear_model_cache() == 1
    assert not embedder.is_loaded


def test_settings_are_validated():
    with pytest.raises(ValueError, match="dtype must be one of float32, float16, bfloat16"):
        LoadSettings("m", dtype="float64")
    with pytest.raises(ValueError, match="backend must be one of torch, onnx, openvino"):
        LoadSettings("m", backend="tensorrt")
    with pytest.raises(ValueError, match="non-empty string"):
        LoadSettings("")
    with pytest.raises(TypeError, match="Embedder got unknown settings: batchsize"):
        Embedder("m", batchsize=3)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        Embedder("m", batch_size=0)


def test_trust_remote_code_is_off_unless_asked(minilm_model_path):
    assert Embedder(minilm_model_path).load_settings.trust_remote_code is False
    assert Reranker(minilm_model_path).load_settings.trust_remote_code is False


def test_unloadable_hub_name_says_what_to_check(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    embedder = Embedder("no-such-org/no-such-model-xyz")
    with pytest.raises(ModelLoadError) as error:
        embedder.model
    message = str(error.value)
    assert "could not load model 'no-such-org/no-such-model-xyz'" in message
    assert "HF_HUB_OFFLINE=1 is set" in message
    assert "local folder" in message
