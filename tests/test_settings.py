"""One declaration of every setting: the same checks in every class (on assignment too), unknown names
refused everywhere, what Chroma stores, and the command-line flags. Nothing here loads a model."""

from __future__ import annotations

import argparse

import pytest
from pydantic import ValidationError

from modalbridge import Embedder, Reranker, settings
from modalbridge.chroma import MultimodalEmbeddingFunction
from modalbridge.langchain import MultimodalEmbeddings
from modalbridge.langchain import MultimodalRerank as LangChainRerank
from modalbridge.llama_index import MultimodalEmbedding
from modalbridge.llama_index import MultimodalRerank as LlamaIndexRerank

# (setting, bad value, what the message says) -- checked in every class that has the setting
BAD_VALUES = [
    ("batch_size", 0, r"must be at least 1 \(an integer\), got 0"),
    ("decode_workers", True, r"must be at least 1 \(an integer\), got True"),
    ("truncate_dim", 0, "must be a positive integer or None, got 0"),
    ("video_frames", "8", "must be a positive integer or None, got '8'"),
    ("max_length", 2.5, "must be a positive integer or None, got 2.5"),
    ("dtype", "float8", "must be one of float32, float16, bfloat16 or None, got 'float8'"),
    ("backend", "tensorrt", "must be one of torch, onnx, openvino, got 'tensorrt'"),
    ("precision", "int4", "must be one of float32, int8, uint8, binary, ubinary, got 'int4'"),
    ("device", [], r"must be a device name or a non-empty list of device names \(not 'auto'\), got \[\]"),
    ("device", 3, "must be a device name such as 'cpu' or 'cuda:0', or a list of them, got 3"),
    ("fetch_timeout_s", 0, r"must be a number of seconds in \(0, 3600\], got 0"),
    ("fetch_max_bytes", 2**40, r"must be an integer in \[1, 2\*\*34\]"),
]

# Each class, how it is built, and its name for a setting (adapters follow their framework's names).
CLASSES = {
    "Embedder": (lambda **kw: Embedder("m", **kw), "embedder", {}),
    "Reranker": (lambda **kw: Reranker("m", **kw), "reranker", {}),
    "Chroma": (lambda **kw: MultimodalEmbeddingFunction("m", **kw), "embedder", {}),
    "LangChain embeddings": (lambda **kw: MultimodalEmbeddings(model_name="m", **kw), "embedder", {}),
    "LangChain rerank": (lambda **kw: LangChainRerank(model_name="m", **kw), "reranker", {}),
    "LlamaIndex embedding": (
        lambda **kw: MultimodalEmbedding(model_name="m", **kw),
        "embedder",
        {"batch_size": "embed_batch_size"},
    ),
    "LlamaIndex rerank": (lambda **kw: LlamaIndexRerank(model="m", **kw), "reranker", {}),
}


def _cases():
    for class_name, (build, kind, rename) in CLASSES.items():
        for name, value, message in BAD_VALUES:
            if name in settings.names(kind):
                yield pytest.param(build, rename.get(name, name), value, message, id=f"{class_name}-{name}")


@pytest.mark.parametrize("build, field, value, message", list(_cases()))
def test_every_class_refuses_the_same_values_with_the_same_message(build, field, value, message):
    with pytest.raises(ValueError, match=f"{field} {message}"):
        build(**{field: value})


@pytest.mark.parametrize(
    "build, field",
    [
        (lambda: MultimodalEmbeddings(model_name="m"), "batch_size"),
        (lambda: LangChainRerank(model_name="m"), "batch_size"),
        (lambda: MultimodalEmbedding(model_name="m"), "embed_batch_size"),
        (lambda: LlamaIndexRerank(model="m"), "batch_size"),
        (lambda: Embedder("m").encode_settings, "batch_size"),
        (lambda: Reranker("m").rerank_settings, "batch_size"),
    ],
)
def test_assignment_is_checked_too(build, field):
    target = build()
    with pytest.raises(ValidationError, match=rf"{field} must be at least 1 \(an integer\), got 0"):
        setattr(target, field, 0)
    assert getattr(target, field) == 32  # unchanged


def test_llama_index_assignment_reaches_the_core():
    embedding = MultimodalEmbedding(model_name="m")
    embedding.embed_batch_size = 5
    embedding.query_instruction = "q: "  # llama-index HuggingFaceEmbedding's name for the query prompt
    assert embedding.embedder.encode_settings.batch_size == 5
    assert embedding.query_prompt == "q: " and embedding.embedder.encode_settings.query_prompt == "q: "


@pytest.mark.parametrize(
    "build",
    [
        lambda: Embedder("m", bogus_setting=3),
        lambda: Reranker("m", bogus_setting=3),
        lambda: MultimodalEmbeddingFunction("m", bogus_setting=3),
        lambda: MultimodalEmbeddings(model_name="m", bogus_setting=3),
        lambda: LangChainRerank(model_name="m", bogus_setting=3),
        lambda: MultimodalEmbedding(model_name="m", query_instruction="query: ", bogus_setting=3),
        lambda: LlamaIndexRerank(model="m", bogus_setting=3),
        lambda: Embedder("m", prompt="a reranker setting"),  # a setting of the other kind is unknown too
        lambda: Reranker("m", normalize=True),
    ],
)
def test_unknown_arguments_are_errors_in_every_class(build):
    # (and nothing is coerced: True is no batch size, "8" no number of frames)
    with pytest.raises((TypeError, ValueError), match="bogus_setting|Extra inputs|unknown settings"):
        build()


def test_every_setting_is_a_field_of_each_adapter_with_the_declared_doc():
    for adapter, kind, rename in [
        (MultimodalEmbeddings, "embedder", {"model_name_or_path": "model_name"}),
        (LangChainRerank, "reranker", {"model_name_or_path": "model_name"}),
        (MultimodalEmbedding, "embedder", {"model_name_or_path": "model_name", "batch_size": "embed_batch_size"}),
        (LlamaIndexRerank, "reranker", {"model_name_or_path": "model"}),
    ]:
        for name in settings.names(kind):
            field = adapter.model_fields[rename.get(name, name)]
            if adapter in (MultimodalEmbeddings, LangChainRerank) and name == "model_kwargs":
                # langchain-huggingface's meaning: constructor arguments (the transformers ones nest inside)
                assert "constructor" in field.description
                continue
            assert field.description == settings.SETTINGS[name].doc, (adapter, name)


def test_chroma_stores_what_decides_the_vectors_and_nothing_machine_local(tmp_path):
    function = MultimodalEmbeddingFunction(
        "m", device="cpu", cache_folder=str(tmp_path), batch_size=7, decode_workers=2, allow_fetch=True,
        show_progress_bar=True, local_files_only=True, normalize=True, dtype="float16", query_prompt="q: ",
    )
    config = function.get_config()
    assert set(config) == settings.STORED & set(settings.names("embedder"))
    assert settings.MACHINE_LOCAL == {
        "device", "cache_folder", "batch_size", "decode_workers", "allow_fetch", "show_progress_bar", "local_files_only",
        "fetch_timeout_s", "fetch_max_bytes", "fetch_allowed_hosts", "fetch_allow_private", "image_decode",
    }
    assert (config["normalize"], config["dtype"], config["query_prompt"]) == (True, "float16", "q: ")


def test_a_stored_config_never_switches_fetching_on():
    # a configuration written by an older version (or by hand) that carries machine-local settings
    stored = {"model_name_or_path": "m", "allow_fetch": True, "device": "cuda:3", "cache_folder": "/elsewhere"}
    rebuilt = MultimodalEmbeddingFunction.build_from_config(stored)
    assert rebuilt.embedder.encode_settings.allow_fetch is False
    assert rebuilt.embedder.load_settings.device == "auto" and rebuilt.embedder.load_settings.cache_folder is None


def test_chroma_function_takes_sentence_transformer_embedding_function_arguments():
    function = MultimodalEmbeddingFunction(model_name="m", device="cpu", normalize_embeddings=True, revision="v1")
    config = function.embedder.config()
    assert (config["model_name_or_path"], config["device"], config["normalize"], config["revision"]) == (
        "m", "cpu", True, "v1"
    )
    with pytest.raises(TypeError, match="unknown settings: prompts"):
        MultimodalEmbeddingFunction(model_name="m", prompts={"query": "q: "})


def test_the_command_line_flags_come_from_the_declaration():
    parser = argparse.ArgumentParser()
    settings.add_cli_options(parser, ["batch_size", "dtype", "trust_remote_code", "video_frames"])
    args = parser.parse_args(["--batch-size", "8", "--dtype", "bfloat16", "--trust-remote-code"])
    assert (args.batch_size, args.dtype, args.trust_remote_code, args.video_frames) == (8, "bfloat16", True, None)
    assert parser.parse_args([]).trust_remote_code is False
    for argv, message in [
        (["--batch-size", "0"], r"--batch-size must be at least 1 \(an integer\), got 0"),
        (["--dtype", "float8"], "--dtype must be one of float32, float16, bfloat16 or None, got 'float8'"),
    ]:
        with pytest.raises(SystemExit):
            try:
                parser.parse_args(argv)
            except SystemExit:
                raise
        # argparse printed the message; check the converter itself says it
        flag = argv[0]
        action = next(a for a in parser._actions if flag in a.option_strings)
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            action.type(argv[1])
    for name, setting in settings.SETTINGS.items():
        assert setting.cli is None or setting.cli == "--" + name.replace("_", "-")


def test_combined_settings_given_twice_must_agree():
    with pytest.raises(ValueError, match=r"device is given twice with different values: 'cuda' \(fields\) and 'cpu' \(model_kwargs\)"):
        MultimodalEmbeddings(model_name="m", device="cuda", model_kwargs={"device": "cpu"})
    assert MultimodalEmbeddings(model_name="m", device="cpu", model_kwargs={"device": "cpu"}).embedder.load_settings.device == "cpu"


@pytest.mark.parametrize("field, value", [("batch_size", True), ("video_frames", "8"), ("normalize", "yes"), ("dtype", 16)])
def test_values_are_not_coerced(field, value):
    with pytest.raises(ValueError, match=field):
        Embedder("m", **{field: value})
    with pytest.raises(ValueError, match=field):
        MultimodalEmbeddings(model_name="m", **{field: value})
