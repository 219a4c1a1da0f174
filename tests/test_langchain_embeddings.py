"""LangChain MultimodalEmbeddings: the standard unit suite, equality with the core Embedder for every
modality, shared models, text staying text, exact errors, and async calls that do not block the loop."""

import asyncio

import numpy as np
import pytest
import soundfile as sf
from langchain_tests.unit_tests import EmbeddingsUnitTests
from pydantic import ValidationError

from modalbridge import Audio, Embedder, Image, MediaError, ModelLoadError, Video, testing
from modalbridge.langchain import MultimodalEmbeddings

MINILM = testing.minilm_path()  # resolved at import: the standard suite needs its params at class definition


class TestMultimodalEmbeddingsStandard(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[MultimodalEmbeddings]:
        return MultimodalEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model_name": MINILM, "device": "cpu"}


@pytest.fixture(scope="module")
def clip(tiny_clip_path):
    return MultimodalEmbeddings(model_name=tiny_clip_path), Embedder(tiny_clip_path)


@pytest.fixture(scope="module")
def qwen(tiny_qwen3vl_path):
    return MultimodalEmbeddings(model_name=tiny_qwen3vl_path), Embedder(tiny_qwen3vl_path)


@pytest.fixture(scope="module")
def tone_paths(tmp_path_factory):
    """Two clips shorter than the tiny CLAP's 1 s window (longer ones are cropped at random offsets)."""
    folder = tmp_path_factory.mktemp("tones")
    paths = []
    for frequency in (440.0, 880.0):
        path = folder / f"tone{int(frequency)}.wav"
        sf.write(path, testing.make_test_tone(0.5, 16_000, frequency), 16_000)
        paths.append(str(path))
    return paths


def test_fields_and_validation(minilm_model_path):
    embeddings = MultimodalEmbeddings(minilm_model_path, batch_size=4, normalize=True)  # positional name too
    assert embeddings.model_name == minilm_model_path and embeddings.document_modality == "text"
    core = embeddings.embedder
    assert core.encode_settings.batch_size == 4 and core.encode_settings.normalize is True
    assert core.load_settings.device == "auto"
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        MultimodalEmbeddings(model_name=minilm_model_path, bogus_setting=3)
    with pytest.raises(ValidationError, match=r"batch_size must be at least 1 \(an integer\), got 0"):
        MultimodalEmbeddings(model_name=minilm_model_path, batch_size=0)
    with pytest.raises(ValidationError, match="Input should be 'text', 'image', 'audio' or 'video'"):
        MultimodalEmbeddings(model_name=minilm_model_path, document_modality="pdf")
    with pytest.raises(ValidationError, match="model_name must be a non-empty string"):
        MultimodalEmbeddings(model_name="")  # the core's own checks run at construction
    with pytest.raises(TypeError, match="model_name given twice"):
        MultimodalEmbeddings(minilm_model_path, model_name=minilm_model_path)


def test_construction_loads_nothing_and_load_errors_name_the_model(tmp_path):
    missing = str(tmp_path / "no-model")
    embeddings = MultimodalEmbeddings(model_name=missing)  # cheap: nothing loaded yet
    assert not embeddings.embedder.is_loaded
    with pytest.raises(ModelLoadError, match=f"could not load model '{missing}'"):
        embeddings.embed_query("hello")


def test_shares_the_core_model(minilm_model_path):
    embeddings = MultimodalEmbeddings(model_name=minilm_model_path, batch_size=7, normalize=True)
    assert embeddings._embedder.model is Embedder(minilm_model_path).model  # encode settings are not load settings
    assert MultimodalEmbeddings.from_embedder(Embedder(minilm_model_path)).embedder.model is embeddings.embedder.model


def test_from_embedder_copies_every_setting(tiny_qwen3vl_path):
    core = Embedder(tiny_qwen3vl_path, device="cpu", batch_size=3, normalize=True, query_prompt="Find: ")
    embeddings = MultimodalEmbeddings.from_embedder(core, document_modality="image")
    assert embeddings.embedder.config() == core.config()
    assert embeddings.document_modality == "image"


def test_text_equals_core_with_query_and_document_prompts(qwen):
    embeddings, core = qwen
    texts = ["a red circle", "a blue square", "a green star"]
    documents = embeddings.embed_documents(texts)
    assert isinstance(documents, list) and all(type(x) is float for x in documents[0])
    np.testing.assert_array_equal(np.array(documents, dtype=np.float32), core.embed_documents(texts))
    query = embeddings.embed_query("a red circle")
    np.testing.assert_array_equal(np.array(query, dtype=np.float32), core.embed_query("a red circle"))
    assert not np.allclose(query, documents[0])  # the tiny model's query prompt is applied to queries only


def test_strings_that_look_like_paths_stay_text(clip, image_paths):
    embeddings, core = clip
    as_text = embeddings.embed_documents([image_paths[0]])
    np.testing.assert_array_equal(np.array(as_text, dtype=np.float32), core.embed_documents([image_paths[0]]))
    np.testing.assert_array_equal(
        np.array(as_text, dtype=np.float32), core.model.encode_document([{"text": image_paths[0]}])
    )
    assert not np.allclose(as_text[0], embeddings.embed_image(uris=[image_paths[0]])[0])
    assert embeddings.embed_query(image_paths[0]) == core.embed_query(image_paths[0]).tolist()


def test_embed_image_equals_core_and_keeps_order(clip, image_paths):
    embeddings, core = clip
    uris = [image_paths[2], image_paths[0], image_paths[5]]
    vectors = embeddings.embed_image(uris=uris)
    assert len(vectors) == 3 and all(type(x) is float for x in vectors[0])
    np.testing.assert_array_equal(np.array(vectors, dtype=np.float32), core.embed_documents([Image(u) for u in uris]))


def test_document_modality_image_embeds_paths_and_keeps_queries_text(tiny_clip_path, clip, image_paths):
    embeddings, core = clip
    images = MultimodalEmbeddings(model_name=tiny_clip_path, document_modality="image")
    assert images.embedder.model is core.model
    np.testing.assert_array_equal(
        np.array(images.embed_documents(image_paths[:3])), np.array(embeddings.embed_image(uris=image_paths[:3]))
    )
    assert images.embed_query(image_paths[0]) == core.embed_query(image_paths[0]).tolist()  # a query is text


def test_embed_audio_equals_core(tiny_clap_path, tone_paths):
    embeddings, core = MultimodalEmbeddings(model_name=tiny_clap_path), Embedder(tiny_clap_path)
    vectors = embeddings.embed_audio(uris=tone_paths)
    expected = core.embed_documents([Audio(p) for p in tone_paths])
    np.testing.assert_array_equal(np.array(vectors, dtype=np.float32), expected)
    assert not np.allclose(vectors[0], vectors[1])


def test_embed_video_equals_core(qwen, video_path, tiny_clip_path):
    embeddings, core = qwen
    np.testing.assert_array_equal(
        np.array(embeddings.embed_video(uris=[video_path]), dtype=np.float32), core.embed_documents([Video(video_path)])
    )
    frames = MultimodalEmbeddings(model_name=tiny_clip_path, video_frames=4)  # image model: mean of 4 frames
    np.testing.assert_array_equal(
        np.array(frames.embed_video(uris=[video_path]), dtype=np.float32),
        Embedder(tiny_clip_path, video_frames=4).embed_documents([Video(video_path)]),
    )


def test_embed_items_mixed_as_documents_and_queries(qwen, image_paths, video_path):
    embeddings, core = qwen
    items = ["a kitchen", Image(image_paths[1]), Video(video_path), "two dogs"]
    np.testing.assert_array_equal(
        np.array(embeddings.embed_items(items), dtype=np.float32), core.embed_documents(items)
    )
    np.testing.assert_array_equal(
        np.array(embeddings.embed_items(items[:2], as_query=True), dtype=np.float32), core.embed_queries(items[:2])
    )


def test_changing_a_field_rebuilds_the_core(minilm_model_path):
    embeddings = MultimodalEmbeddings(model_name=minilm_model_path)
    model = embeddings.embedder.model
    full = embeddings.embed_query("hello")
    embeddings.truncate_dim = 8
    assert embeddings.embed_query("hello") == full[:8]
    assert embeddings.embedder.model is model
    with pytest.raises(ValidationError, match=r"batch_size must be at least 1 \(an integer\), got 0"):
        embeddings.batch_size = 0


def test_errors_name_the_item(clip, image_paths, tmp_path):
    embeddings, _ = clip
    with pytest.raises(TypeError, match="uris must be a list of image sources, got str"):
        embeddings.embed_image(uris=image_paths[0])
    with pytest.raises(TypeError, match=r"uris 1: cannot read an int as an image: pass a path, a URL"):
        embeddings.embed_image(uris=[image_paths[0], 3])
    missing = str(tmp_path / "missing.jpg")
    with pytest.raises(MediaError, match=f"item 1: {missing}: no such file"):
        embeddings.embed_image(uris=[image_paths[0], missing])
    unsupported = r"item 0: Audio\(.*\) is audio, which this model does not support; it supports: text, image"
    with pytest.raises(ValueError, match=unsupported):
        embeddings.embed_audio(uris=[str(tmp_path / "a.ogg")])
    with pytest.raises(TypeError, match="embed_documents takes a list of texts, got str; use embed_query"):
        embeddings.embed_documents("one text")
    with pytest.raises(MediaError, match="fetching URLs is off; build the model with allow_fetch=True"):
        embeddings.embed_image(uris=["https://example.invalid/cat.jpg"])


async def test_async_equals_sync(qwen, image_paths):
    embeddings, _ = qwen
    texts = ["a cat", "a dog"]
    assert await embeddings.aembed_documents(texts) == embeddings.embed_documents(texts)
    assert await embeddings.aembed_query("a cat") == embeddings.embed_query("a cat")
    assert await embeddings.aembed_image(image_paths[:2]) == embeddings.embed_image(image_paths[:2])
    assert await embeddings.aembed_items(["x", Image(image_paths[0])], as_query=True) == embeddings.embed_items(
        ["x", Image(image_paths[0])], as_query=True
    )


async def test_async_embedding_does_not_block_the_event_loop(minilm_model_path):
    embeddings = MultimodalEmbeddings(model_name=minilm_model_path, batch_size=8)
    embeddings.embed_query("warm up")  # load the model first: only encoding is timed
    texts = [f"sentence number {i} about a topic" for i in range(96)]
    task = asyncio.create_task(embeddings.aembed_documents(texts))
    ticks = 0
    while not task.done():
        await asyncio.sleep(0.001)
        ticks += 1
    assert len(task.result()) == 96
    assert ticks >= 5  # a blocking call would let the loop tick once, after it finished
