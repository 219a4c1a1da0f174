"""Unit tests of the Chroma embedding function: registry, config round trip, config updates, remote-code
opt-in, distance spaces, and equality with the core Embedder. No Chroma client is started here."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

import chromadb  # noqa: F401

from chromadb.api.types import validate_embedding_function  # noqa: E402
from chromadb.utils.embedding_functions import known_embedding_functions  # noqa: E402

import modalbridge.chroma as mb_chroma  # noqa: E402
from modalbridge import Embedder, Image, calibration_ranges, settings  # noqa: E402
from modalbridge.chroma import (  # noqa: E402
    ENV_TRUST_REMOTE_CODE,
    MultimodalEmbeddingFunction,
    RemoteCodeNotAllowedError,
    allow_remote_code,
)
from modalbridge.loading import MODEL_CACHE  # noqa: E402


@pytest.fixture
def no_remote_code(monkeypatch):
    """A process that has not opted in to remote code and constructed no function with it."""
    monkeypatch.delenv(ENV_TRUST_REMOTE_CODE, raising=False)
    monkeypatch.setattr(mb_chroma.function, "_remote_code_switch", False)
    monkeypatch.setattr(mb_chroma.function, "_remote_code_consents", set())


@pytest.fixture(scope="module")
def photo(image_paths) -> np.ndarray:
    from PIL import Image as PILImage

    with PILImage.open(image_paths[0]) as image:
        return np.array(image.convert("RGB").resize((48, 40)))


def _with_similarity(src: str, dst, similarity: str) -> str:
    shutil.copytree(src, dst)
    config_path = os.path.join(dst, "config_sentence_transformers.json")
    with open(config_path) as f:
        config = json.load(f)
    config["similarity_fn_name"] = similarity
    with open(config_path, "w") as f:
        json.dump(config, f)
    return str(dst)


# -- registry and protocol ---------------------------------------------------------------------------


def test_registered_under_its_name_and_has_chromas_signature():
    assert MultimodalEmbeddingFunction.name() == "modalbridge"
    assert known_embedding_functions["modalbridge"] is MultimodalEmbeddingFunction
    ef = MultimodalEmbeddingFunction("some/model")
    validate_embedding_function(ef)  # Chroma compares __call__'s parameter names
    assert not ef.is_legacy()  # name, get_config and build_from_config are all implemented


# -- configuration ---------------------------------------------------------------------------------


def test_config_round_trip_is_json_and_cheap(tiny_clip_path):
    loads = MODEL_CACHE.loads
    ef = MultimodalEmbeddingFunction(tiny_clip_path, device="cpu", batch_size=4, normalize=True, query_prompt="q: ")
    config = ef.get_config()
    assert config == json.loads(json.dumps(config))
    everything = Embedder(tiny_clip_path, device="cpu", batch_size=4, normalize=True, query_prompt="q: ").config()
    # what decides the vectors is stored; device, batch size, workers, cache folder and fetching are not
    assert config == {key: value for key, value in everything.items() if key in settings.STORED}
    assert {"device", "batch_size", "decode_workers", "cache_folder", "allow_fetch"}.isdisjoint(config)
    rebuilt = MultimodalEmbeddingFunction.build_from_config(config)
    assert rebuilt.get_config() == config
    assert MODEL_CACHE.loads == loads  # nothing was loaded by constructing, configuring or rebuilding


def test_relative_model_folder_is_stored_absolute(tiny_clip_path, monkeypatch):
    monkeypatch.chdir(os.path.dirname(tiny_clip_path))
    ef = MultimodalEmbeddingFunction(os.path.basename(tiny_clip_path))
    assert ef.get_config()["model_name_or_path"] == os.path.abspath(tiny_clip_path)
    assert MultimodalEmbeddingFunction("org/hub-name").get_config()["model_name_or_path"] == "org/hub-name"


def test_from_embedder_and_rebuilt_functions_share_the_model(tiny_clip_path):
    embedder = Embedder(tiny_clip_path, device="cpu")
    ef = MultimodalEmbeddingFunction.from_embedder(embedder)
    rebuilt = MultimodalEmbeddingFunction.build_from_config(ef.get_config())
    assert ef.embedder.model is embedder.model
    assert rebuilt.embedder.model is embedder.model


def test_settings_that_cannot_be_stored_are_refused():
    import torch
    with pytest.raises(TypeError, match=r"settings\['model_kwargs'\]\['torch_dtype'\] is a dtype, which cannot be stored"):
        MultimodalEmbeddingFunction("m", model_kwargs={"torch_dtype": torch.float16})
    with pytest.raises(TypeError, match="Embedder got unknown settings: colour"):
        MultimodalEmbeddingFunction("m", colour="red")


@pytest.mark.parametrize(
    "config, message",
    [
        ({}, "needs model_name_or_path"),
        ({"model_name_or_path": ""}, "needs model_name_or_path"),
        ({"model_name_or_path": "m", "colour": "red"}, "unknown modalbridge settings: colour"),
        ({"model_name_or_path": "m", "dtype": "float8"}, "invalid modalbridge configuration: dtype must be one of"),
        ({"model_name_or_path": "m", "batch_size": 0}, "batch_size must be at least 1"),
        ([], "must be a dict"),
    ],
)
def test_validate_config_rejects(config, message):
    with pytest.raises(ValueError, match=message):
        MultimodalEmbeddingFunction.validate_config(config)


def test_validate_config_accepts_old_configs_with_fewer_keys():
    MultimodalEmbeddingFunction.validate_config({"model_name_or_path": "m"})
    MultimodalEmbeddingFunction.validate_config(MultimodalEmbeddingFunction("m").get_config())


# -- config updates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [{"device": "cuda"}, {"batch_size": 3}, {"show_progress_bar": True}, {"decode_workers": 2}, {"allow_fetch": True}],
)
def test_update_allows_settings_that_do_not_change_vectors(change):
    old = MultimodalEmbeddingFunction("m").get_config()
    new = MultimodalEmbeddingFunction("m", **change).get_config()
    MultimodalEmbeddingFunction("m").validate_config_update(old, new)


@pytest.mark.parametrize(
    "change",
    [
        {"model_name_or_path": "other"},
        {"revision": "v2"},
        {"dtype": "float16"},
        {"backend": "onnx"},
        {"trust_remote_code": True},
        {"truncate_dim": 8},
        {"normalize": True},
        {"precision": "binary"},
        {"query_prompt": "q: "},
        {"document_prompt_name": "document"},
        {"model_kwargs": {"attn_implementation": "eager"}},
        {"processor_kwargs": {"max_pixels": 1024}},
        {"video_frames": 4},
    ],
)
def test_update_refuses_settings_that_change_vectors(change):
    old = MultimodalEmbeddingFunction("m").get_config()
    new = {**old, **change}
    (key,) = change
    with pytest.raises(ValueError, match=rf"cannot change {key} \(.*\) of this collection's embedding function"):
        MultimodalEmbeddingFunction("m").validate_config_update(old, new)


def test_update_compares_a_model_folder_by_its_absolute_path(tiny_clip_path, monkeypatch):
    monkeypatch.chdir(os.path.dirname(tiny_clip_path))
    old = {"model_name_or_path": tiny_clip_path}  # an older config: every missing key is a default
    new = MultimodalEmbeddingFunction(os.path.basename(tiny_clip_path), device="cpu").get_config()
    MultimodalEmbeddingFunction(tiny_clip_path).validate_config_update(old, new)


# -- trust_remote_code ----------------------------------------------------------------------------


def test_stored_remote_code_is_refused_without_opt_in(no_remote_code):
    config = {**MultimodalEmbeddingFunction("org/remote").get_config(), "trust_remote_code": True}
    with pytest.raises(RemoteCodeNotAllowedError, match=r"model 'org/remote' \(revision None\) has trust_remote_code=True"):
        MultimodalEmbeddingFunction.build_from_config(config)
    with pytest.raises(RemoteCodeNotAllowedError, match="MODALBRIDGE_TRUST_REMOTE_CODE=1"):
        MultimodalEmbeddingFunction.build_from_config(config)


def test_stored_remote_code_with_env_var(no_remote_code, monkeypatch):
    config = {"model_name_or_path": "org/remote", "trust_remote_code": True}
    monkeypatch.setenv(ENV_TRUST_REMOTE_CODE, "1")
    assert MultimodalEmbeddingFunction.build_from_config(config).embedder.load_settings.trust_remote_code


def test_stored_remote_code_with_allow_remote_code(no_remote_code):
    config = {"model_name_or_path": "org/remote", "trust_remote_code": True}
    allow_remote_code()
    try:
        assert MultimodalEmbeddingFunction.build_from_config(config).embedder.load_settings.trust_remote_code
    finally:
        allow_remote_code(False)
    with pytest.raises(RemoteCodeNotAllowedError):
        MultimodalEmbeddingFunction.build_from_config(config)


def test_constructing_with_remote_code_consents_for_that_model_and_revision_only(no_remote_code):
    ef = MultimodalEmbeddingFunction("org/remote", revision="abc", trust_remote_code=True)
    assert not ef.is_legacy()  # Chroma's check rebuilds from get_config(): it must work for the caller's own function
    assert MultimodalEmbeddingFunction.build_from_config(ef.get_config()).embedder.load_settings.trust_remote_code
    for other in ({"model_name_or_path": "org/other"}, {"model_name_or_path": "org/remote", "revision": "def"}):
        with pytest.raises(RemoteCodeNotAllowedError):
            MultimodalEmbeddingFunction.build_from_config({**other, "trust_remote_code": True})


# -- distance spaces ------------------------------------------------------------------------------


def test_spaces_follow_the_models_similarity_function(tiny_qwen3vl_path, tiny_clip_path, tmp_path):
    # Qwen3-VL ends in Normalize: all spaces rank alike, the model's own first.
    ef = MultimodalEmbeddingFunction(tiny_qwen3vl_path)
    assert ef.default_space() == "cosine"
    assert ef.supported_spaces() == ["cosine", "ip", "l2"]
    dot = MultimodalEmbeddingFunction(_with_similarity(tiny_qwen3vl_path, tmp_path / "dot", "dot"))
    assert (dot.default_space(), dot.supported_spaces()) == ("ip", ["ip", "cosine", "l2"])
    l2 = MultimodalEmbeddingFunction(_with_similarity(tiny_qwen3vl_path, tmp_path / "l2", "euclidean"))
    assert l2.default_space() == "l2"
    # CLIP does not normalize: only cosine ranks as the model means.
    clip = MultimodalEmbeddingFunction(tiny_clip_path)
    assert (clip.default_space(), clip.supported_spaces()) == ("cosine", ["cosine"])
    assert MultimodalEmbeddingFunction(tiny_clip_path, normalize=True).supported_spaces() == ["cosine", "ip", "l2"]


def test_default_space_warns_before_chroma_swallows_a_load_error(tmp_path):
    ef = MultimodalEmbeddingFunction(str(tmp_path / "missing-model"))
    with pytest.warns(UserWarning, match="WITHOUT storing its embedding function"):
        with pytest.raises(Exception, match="could not load model"):
            ef.default_space()


# -- embeddings equal the core's -------------------------------------------------------------------


def test_documents_images_and_queries_equal_the_embedder(tiny_qwen3vl_path, photo):
    ef = MultimodalEmbeddingFunction(tiny_qwen3vl_path, batch_size=2)
    embedder = Embedder(tiny_qwen3vl_path, batch_size=2)
    texts = ["a cat on a mat", "photos/cat.jpg", "https://example.com/dog.png"]  # paths and URLs stay text
    out = ef(texts + [photo])
    assert isinstance(out, list) and all(v.dtype == np.float32 and v.shape == (32,) for v in out)
    np.testing.assert_array_equal(np.stack(out), embedder.embed_documents(texts + [Image(photo)]))
    queries = ef.embed_query(["a cat", photo])
    np.testing.assert_array_equal(np.stack(queries), embedder.embed_queries(["a cat", Image(photo)]))
    assert not np.allclose(queries[0], out[0])  # the query prompt is used for queries only
    assert ef.embedder.model is embedder.model


def test_quantized_precision_comes_back_as_float32(tiny_clip_path):
    ranges = calibration_ranges(Embedder(tiny_clip_path), ["w", "x", "y", "z"])
    out = MultimodalEmbeddingFunction(tiny_clip_path, precision="int8", quantization_ranges=ranges)(["a", "b", "c"])
    expected = Embedder(tiny_clip_path, precision="int8", quantization_ranges=ranges).embed_documents(["a", "b", "c"])
    assert out[0].dtype == np.float32
    np.testing.assert_array_equal(np.stack(out), expected.astype(np.float32))


def test_unsupported_inputs_are_named(tiny_clip_path):
    ef = MultimodalEmbeddingFunction(tiny_clip_path)
    with pytest.raises(TypeError, match=r"item 1: None is not an input"):
        ef(["a", None])
    with pytest.raises(TypeError, match=r"item 0: 3 bytes is not an input"):
        ef([b"abc"])
    with pytest.raises(TypeError, match="expected a list of inputs, got str"):
        ef("a cat")
    with pytest.raises(ValueError, match=r"item 1: Video\(.*\) is video, which this model does not support"):
        from modalbridge import Video

        ef(["a", Video(np.zeros((2, 8, 8, 3), dtype=np.uint8))])
