"""MultimodalEmbedding (LlamaIndex): equality with the core Embedder for text, queries, images from every
source, audio, video and nodes; real batching; async that does not block; errors naming the node id;
one shared model."""

from __future__ import annotations

import asyncio
import base64
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest

import llama_index.core  # noqa: F401

from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler  # noqa: E402
from llama_index.core.ingestion import IngestionPipeline  # noqa: E402
from llama_index.core.schema import Document, ImageNode, MediaResource, Node, TextNode  # noqa: E402
from modalbridge import Audio, Embedder, Image, MediaError, Video  # noqa: E402
from modalbridge.llama_index import MultimodalEmbedding  # noqa: E402
from modalbridge.loading import MODEL_CACHE  # noqa: E402
from modalbridge.testing import make_test_tone  # noqa: E402

ATOL = 1e-5


@pytest.fixture(scope="module")
def clip(tiny_clip_path):
    return MultimodalEmbedding(tiny_clip_path, embed_batch_size=4), Embedder(tiny_clip_path, normalize=True)


@pytest.fixture(scope="module")
def qwen(tiny_qwen3vl_path):
    return MultimodalEmbedding(tiny_qwen3vl_path), Embedder(tiny_qwen3vl_path, normalize=True)


@pytest.fixture(scope="module")
def clap(tiny_clap_path):
    return MultimodalEmbedding(tiny_clap_path), Embedder(tiny_clap_path, normalize=True)


@pytest.fixture(scope="module")
def short_wav(tmp_path_factory) -> str:
    """A 0.5 s tone: CLAP crops clips longer than its 1 s window at a random offset, so keep it short."""
    import soundfile

    path = tmp_path_factory.mktemp("audio") / "tone.wav"
    soundfile.write(path, make_test_tone(0.5, 16_000, 440.0), 16_000, subtype="FLOAT")
    return str(path)


def test_text_and_queries_equal_the_core_embedder(qwen):
    emb, core = qwen
    texts = ["a red bicycle", "a kitchen", "https://example.invalid/cat.jpg"]  # text is text, never fetched
    np.testing.assert_allclose(emb.get_text_embedding_batch(texts), core.embed_documents(texts), atol=ATOL)
    np.testing.assert_allclose(emb.get_text_embedding(texts[0]), core.embed_document(texts[0]), atol=ATOL)
    # Queries use the model's query prompt, documents do not.
    np.testing.assert_allclose(emb.get_query_embedding("red"), core.embed_query("red"), atol=ATOL)
    assert not np.allclose(emb.get_query_embedding("red"), emb.get_text_embedding("red"))
    assert isinstance(emb.get_query_embedding("red")[0], float)


def test_images_from_path_bytesio_base64_and_data_uri_equal_the_core(clip, image_paths):
    emb, core = clip
    path = image_paths[0]
    raw = Path(path).read_bytes()
    b64 = base64.b64encode(raw).decode()
    expected = core.embed_documents([Image(path)])[0]
    node = ImageNode(image=b64, id_="b64-node")
    for source in (path, Path(path), BytesIO(raw), node.resolve_image(), f"data:image/jpeg;base64,{b64}", Image(raw)):
        np.testing.assert_allclose(emb.get_image_embedding(source), expected, atol=ATOL)


def test_image_batches_call_the_model_once_per_batch(clip, image_paths):
    emb, core = clip  # embed_batch_size=4
    debug = LlamaDebugHandler()
    emb.callback_manager = CallbackManager([debug])
    calls = []
    hook = emb.model[0].register_forward_hook(lambda module, args, output: calls.append(1))
    try:
        vectors = emb.get_image_embedding_batch(image_paths[:9])
    finally:
        hook.remove()
        emb.callback_manager = CallbackManager([])
    np.testing.assert_allclose(vectors, core.embed_documents([Image(p) for p in image_paths[:9]]), atol=ATOL)
    assert len(calls) == 3  # 4 + 4 + 1 images: three forward passes, not nine
    events = debug.get_event_pairs(CBEventType.EMBEDDING)
    assert [len(end.payload["chunks"]) for _, end in events] == [4, 4, 1]


def test_text_batches_call_the_model_once_per_batch(clip):
    emb, core = clip
    calls = []
    hook = emb.model[0].register_forward_hook(lambda module, args, output: calls.append(1))
    try:
        vectors = emb.get_text_embedding_batch([f"text {i}" for i in range(6)])
    finally:
        hook.remove()
    np.testing.assert_allclose(vectors, core.embed_documents([f"text {i}" for i in range(6)]), atol=ATOL)
    assert len(calls) == 2  # 4 + 2


def test_long_text_lists_are_batched_by_length_and_returned_in_order(clip):
    """Beyond one embed_batch_size batch, LlamaIndex's batching gets the texts longest first (as encode
    batches them, so each batch pads little); vectors come back in the caller's order, events per batch."""
    emb, core = clip
    texts = ["a " * n for n in (1, 9, 3, 12, 2, 7, 5, 10, 4)]  # 9 texts, batches of 4
    debug = LlamaDebugHandler()
    emb.callback_manager = CallbackManager([debug])
    try:
        vectors = emb.get_text_embedding_batch(texts)
        async_vectors = asyncio.run(emb.aget_text_embedding_batch(texts))
    finally:
        emb.callback_manager = CallbackManager([])
    direct = core.model.encode_document(texts, batch_size=4, normalize_embeddings=True)
    np.testing.assert_allclose(vectors, direct, atol=ATOL)
    np.testing.assert_allclose(async_vectors, direct, atol=ATOL)
    longest_first = sorted(texts, key=len, reverse=True)
    chunks = [end.payload["chunks"] for _, end in debug.get_event_pairs(CBEventType.EMBEDDING)]
    assert chunks[:3] == [longest_first[:4], longest_first[4:8], longest_first[8:]]
    assert emb.embedder.batch_order(texts) == sorted(range(9), key=lambda i: -len(texts[i]))


def test_image_urls_are_fetched_only_when_allowed(clip):
    emb, _ = clip
    with pytest.raises(MediaError) as error:
        emb.get_image_embedding("http://127.0.0.1:9/cat.jpg")
    assert str(error.value) == (
        "item 0: http://127.0.0.1:9/cat.jpg: fetching URLs is off; build the model with allow_fetch=True to fetch it"
    )


def test_errors_in_later_batches_give_the_index_in_the_whole_list(clip, image_paths, tmp_path):
    emb, _ = clip
    missing = str(tmp_path / "missing.jpg")
    with pytest.raises(MediaError) as error:
        emb.get_image_embedding_batch(image_paths[:5] + [missing])
    assert str(error.value) == f"item 5: {missing}: no such file"
    with pytest.raises(TypeError, match=r"^item 1: cannot read an int as an image: pass a path"):
        emb.get_image_embedding_batch([image_paths[0], 3])


def test_audio_from_path_bytes_and_waveform_equal_the_core(clap, short_wav):
    emb, core = clap
    expected = core.embed_documents([Audio(short_wav)])[0]
    raw = Path(short_wav).read_bytes()
    np.testing.assert_allclose(emb.get_audio_embedding(short_wav), expected, atol=ATOL)
    np.testing.assert_allclose(emb.get_audio_embedding(BytesIO(raw)), expected, atol=ATOL)
    np.testing.assert_allclose(
        emb.get_audio_embedding_batch([raw, Audio(make_test_tone(0.5, 16_000, 440.0), sampling_rate=16_000)]),
        [expected, expected],
        atol=ATOL,
    )


def test_video_from_path_and_bytes_equal_the_core(qwen, video_path):
    emb, core = qwen
    expected = core.embed_documents([Video(video_path)])[0]
    np.testing.assert_allclose(emb.get_video_embedding(video_path), expected, atol=ATOL)
    np.testing.assert_allclose(emb.get_video_embedding_batch([Path(video_path).read_bytes()])[0], expected, atol=ATOL)


def test_nodes_are_embedded_by_what_they_carry(qwen, image_paths, video_path):
    emb, core = qwen
    b64 = base64.b64encode(Path(image_paths[1]).read_bytes()).decode()
    nodes = [
        TextNode(text="a kitchen", id_="text"),
        ImageNode(image_path=image_paths[0], text="a caption that is not embedded", id_="image-path"),
        ImageNode(image=b64, id_="image-b64"),
        Document(video_resource=MediaResource(path=video_path), id_="video"),
        Node(image_resource=MediaResource(data=Path(image_paths[2]).read_bytes()), id_="image-resource"),
    ]
    expected = core.embed_documents(
        ["a kitchen", Image(image_paths[0]), Image(image_paths[1]), Video(video_path), Image(image_paths[2])]
    )
    np.testing.assert_allclose(emb.get_node_embedding_batch(nodes), expected, atol=ATOL)
    # As a transformation (IngestionPipeline), every node gets the same embedding.
    out = IngestionPipeline(transformations=[emb]).run(nodes=nodes)
    np.testing.assert_allclose([n.embedding for n in out], expected, atol=ATOL)


def test_audio_nodes(clap, short_wav):
    emb, core = clap
    nodes = [Document(audio_resource=MediaResource(path=short_wav), id_="sound"), TextNode(text="a tone", id_="t")]
    np.testing.assert_allclose(
        emb.get_node_embedding_batch(nodes), core.embed_documents([Audio(short_wav), "a tone"]), atol=ATOL
    )


def test_errors_name_the_node_id(clip, qwen, image_paths, short_wav, tmp_path):
    emb, _ = clip
    missing = str(tmp_path / "nope.jpg")
    with pytest.raises(MediaError) as error:
        emb.get_node_embedding_batch([TextNode(text="a", id_="t1"), ImageNode(image_path=missing, id_="img-9")])
    assert str(error.value) == f"item 1 (node 'img-9'): {missing}: no such file"
    later = [TextNode(text=f"t{i}", id_=f"t{i}") for i in range(5)] + [ImageNode(image_path=missing, id_="img-5")]
    with pytest.raises(MediaError) as error:  # embed_batch_size=4: the second batch
        emb.get_node_embedding_batch(later)
    assert str(error.value) == f"item 5 (node 'img-5'): {missing}: no such file"

    with pytest.raises(ValueError) as error:
        emb.get_node_embedding_batch([Document(audio_resource=MediaResource(path=short_wav), id_="sound-1")])
    assert str(error.value) == (
        f"item 0 (node 'sound-1'): Audio({short_wav}) is audio, which this model does not support; "
        "it supports: text, image"
    )

    with pytest.raises(ValueError) as error:
        emb.get_node_embedding_batch([ImageNode(text="only a caption", id_="empty-image")])
    assert str(error.value) == (
        "node 'empty-image': an ImageNode needs an image to be embedded or scored, "
        "but its image, image_path and image_url are all empty"
    )

    two = Node(
        image_resource=MediaResource(path=image_paths[0]), audio_resource=MediaResource(path=short_wav), id_="two"
    )
    with pytest.raises(ValueError) as error:
        emb.get_node_embedding_batch([two])
    assert str(error.value) == (
        "node 'two': carries several media (image_resource, audio_resource); a node is embedded or scored "
        "as one item, so give each medium its own node"
    )
    # Videos on an image-only model: the core's hint survives.
    with pytest.raises(ValueError, match=r"^item 0 \(node 'clip'\): Video\(.*set video_frames=8\)$"):
        emb.get_node_embedding_batch([Document(video_resource=MediaResource(path="/x/v.mp4"), id_="clip")])


async def test_async_methods_equal_sync_and_do_not_block_the_loop(clip, image_paths):
    emb, core = clip
    assert emb.model is not None  # loaded before timing the loop
    task = asyncio.create_task(emb.aget_image_embedding_batch(image_paths))
    ticks = 0
    while not task.done():
        ticks += 1
        await asyncio.sleep(0.001)
    assert ticks >= 2  # the loop kept running while the images were decoded and embedded
    np.testing.assert_allclose(await task, core.embed_documents([Image(p) for p in image_paths]), atol=ATOL)
    np.testing.assert_allclose(await emb.aget_query_embedding("red"), core.embed_query("red"), atol=ATOL)
    np.testing.assert_allclose(await emb.aget_text_embedding("red"), core.embed_document("red"), atol=ATOL)
    np.testing.assert_allclose(
        await emb.aget_text_embedding_batch(["a", "b", "c", "d", "e"]), core.embed_documents(list("abcde")), atol=ATOL
    )
    np.testing.assert_allclose(
        await emb.aget_image_embedding(image_paths[0]), core.embed_documents([Image(image_paths[0])])[0], atol=ATOL
    )


def test_the_model_is_shared_with_every_adapter_of_the_same_settings(tiny_clip_path):
    loads = MODEL_CACHE.loads
    emb = MultimodalEmbedding(tiny_clip_path, normalize=True, embed_batch_size=7)
    assert emb.model is Embedder(tiny_clip_path).model  # encode settings do not change the model
    assert MultimodalEmbedding.from_dict(emb.to_dict()).model is emb.model
    assert MultimodalEmbedding.from_embedder(Embedder(tiny_clip_path)).model is emb.model
    assert MODEL_CACHE.loads - loads <= 1
    other = MultimodalEmbedding(tiny_clip_path, processor_kwargs={"use_fast": False})
    assert other.embedder.load_settings != emb.embedder.load_settings


def test_fields_config_and_round_trip(tiny_qwen3vl_path):
    emb = MultimodalEmbedding(
        model_name=tiny_qwen3vl_path, embed_batch_size=3, normalize=True, truncate_dim=8, query_prompt="Find: "
    )
    assert MultimodalEmbedding.class_name() == "ModalbridgeMultimodalEmbedding"
    own = set(MultimodalEmbedding.model_fields) - {
        "num_workers",
        "embeddings_cache",
        "rate_limiter",
        "callback_manager",
    }
    assert all(MultimodalEmbedding.model_fields[name].description for name in own)
    config = emb.embedder.config()
    assert (config["batch_size"], config["truncate_dim"], config["query_prompt"]) == (3, 8, "Find: ")
    rebuilt = MultimodalEmbedding.from_dict(emb.to_dict())
    assert rebuilt.embedder.config() == config
    assert len(emb.get_query_embedding("x")) == 8 == emb.dimension
    # Changing a field after construction changes what the core does.
    emb.truncate_dim = None
    assert len(emb.get_query_embedding("x")) == 32
    assert MultimodalEmbedding.from_embedder(rebuilt.embedder).to_dict() == rebuilt.to_dict()


def test_nodes_go_through_llama_index_batching_cache_and_events(tiny_clip_path, image_paths):
    """Text nodes use BaseEmbedding's own batching (with its embeddings cache and events), image nodes
    MultiModalEmbedding's image batches: nothing bypasses them, and one forward pass per batch."""
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.storage.kvstore import SimpleKVStore

    class Starts(BaseEventHandler):
        count: int = 0

        def handle(self, event, **kwargs) -> None:
            if type(event).__name__ == "EmbeddingStartEvent":
                self.count += 1

    starts = Starts()
    get_dispatcher().add_event_handler(starts)
    cache = SimpleKVStore()
    emb = MultimodalEmbedding(tiny_clip_path, embed_batch_size=2, embeddings_cache=cache)
    core = Embedder(tiny_clip_path, normalize=True)
    texts = [f"note {i}" for i in range(3)]
    nodes = [TextNode(text=t, id_=f"t{i}") for i, t in enumerate(texts)] + [ImageNode(image_path=image_paths[0], id_="img")]
    calls = []
    hook = emb.model[0].register_forward_hook(lambda module, args, output: calls.append(1))
    try:
        vectors = emb.get_node_embedding_batch(nodes)
        assert len(calls) == 3 and starts.count == 3  # texts 2 + 1, the image 1
        for text, vector in zip(texts, vectors):  # stored in LlamaIndex's embeddings cache
            (cached,) = cache.get(key=text, collection="embeddings").values()
            np.testing.assert_allclose(cached, vector, atol=ATOL)
        again = emb.get_node_embedding_batch(nodes[:3])  # answered from the cache: no forward pass
        assert len(calls) == 3 and again == vectors[:3]
    finally:
        hook.remove()
        get_dispatcher().event_handlers.remove(starts)
    np.testing.assert_allclose(vectors, core.embed_documents([*texts, Image(image_paths[0])]), atol=ATOL)
