"""MultimodalRerank (LlamaIndex): order and scores equal the core Reranker for text, image (path, base64,
opt-in URL), video nodes and image queries; top_n / threshold / retrieval score; events; errors naming
the node id; one shared model."""

from __future__ import annotations

import base64
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import llama_index.core  # noqa: F401

from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler  # noqa: E402
from llama_index.core.instrumentation import get_dispatcher  # noqa: E402
from llama_index.core.instrumentation.event_handlers import BaseEventHandler  # noqa: E402
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent  # noqa: E402
from llama_index.core.schema import (  # noqa: E402
    Document,
    ImageNode,
    MediaResource,
    MetadataMode,
    NodeWithScore,
    QueryBundle,
    TextNode,
)
from modalbridge import Combined, Image, MediaError, Reranker, Video  # noqa: E402
from modalbridge.llama_index import MultimodalRerank  # noqa: E402

ATOL = 1e-6


@pytest.fixture(scope="module")
def vl(tiny_qwen3vl_reranker_path):
    return MultimodalRerank(tiny_qwen3vl_reranker_path, top_n=None), Reranker(tiny_qwen3vl_reranker_path)


@pytest.fixture(scope="module")
def text_only(tiny_text_cross_encoder_path):
    return MultimodalRerank(tiny_text_cross_encoder_path, top_n=3), Reranker(tiny_text_cross_encoder_path)


def scored(*nodes):
    return [NodeWithScore(node=node, score=0.1 * (i + 1)) for i, node in enumerate(nodes)]


def test_text_nodes_follow_the_core_ranking(text_only):
    rerank, core = text_only
    texts = ["a fast cat", "a slow snail", "a kitchen", "a cheetah runs", "http://x.invalid/a.jpg"]
    nodes = scored(*[TextNode(text=t, id_=f"t{i}") for i, t in enumerate(texts)])
    out = rerank.postprocess_nodes(nodes, query_str="what is a cheetah")
    expected = core.rank("what is a cheetah", texts, top_n=3)
    assert [n.node_id for n in out] == [f"t{hit.index}" for hit in expected]
    np.testing.assert_allclose([n.score for n in out], [hit.score for hit in expected], atol=ATOL)


def test_mixed_nodes_are_scored_on_their_media_not_their_text(vl, image_paths, video_path):
    rerank, core = vl
    raw = Path(image_paths[1]).read_bytes()
    nodes = scored(
        TextNode(text="a yellow kitchen", id_="text"),
        ImageNode(image_path=image_paths[0], text="a caption", id_="image-path"),
        ImageNode(image=base64.b64encode(raw).decode(), id_="image-b64"),
        Document(video_resource=MediaResource(path=video_path), id_="video"),
    )
    documents = ["a yellow kitchen", Image(image_paths[0]), Image(raw), Video(video_path)]
    out = rerank.postprocess_nodes(nodes, query_str="kitchen")
    expected = core.rank("kitchen", documents)
    assert [n.node_id for n in out] == [nodes[hit.index].node_id for hit in expected]
    np.testing.assert_allclose([n.score for n in out], [hit.score for hit in expected], atol=ATOL)
    # The image node's score is its image's, not its caption's.
    image_score = next(n.score for n in out if n.node_id == "image-path")
    assert image_score == pytest.approx(float(core.score("kitchen", [Image(image_paths[0])])[0]), abs=ATOL)
    assert image_score != pytest.approx(float(core.score("kitchen", ["a caption"])[0]), abs=ATOL)


def test_image_queries_and_combined_queries(vl, image_paths):
    rerank, core = vl
    nodes = scored(*[ImageNode(image_path=p, id_=f"i{k}") for k, p in enumerate(image_paths[:4])])
    documents = [Image(p) for p in image_paths[:4]]
    out = rerank.postprocess_nodes(nodes, QueryBundle(query_str="", image_path=image_paths[2]))
    expected = core.rank(Image(image_paths[2]), documents)
    assert [n.node_id for n in out] == [f"i{hit.index}" for hit in expected]
    np.testing.assert_allclose([n.score for n in out], [hit.score for hit in expected], atol=ATOL)
    both = rerank.postprocess_nodes(nodes, QueryBundle(query_str="this dog", image_path=image_paths[2]))
    expected = core.rank(Combined(text="this dog", image=Image(image_paths[2])), documents)
    assert [n.node_id for n in both] == [f"i{hit.index}" for hit in expected]


def test_top_n_threshold_and_retrieval_score(text_only):
    _, core = text_only
    rerank = MultimodalRerank(core.load_settings.model_name_or_path, keep_retrieval_score=True, top_n=None)
    texts = ["alpha", "beta", "gamma", "delta"]
    nodes = scored(*[TextNode(text=t, id_=t) for t in texts])
    ranked = core.rank("query", texts)
    out = rerank.postprocess_nodes(nodes, query_str="query")
    assert [n.node_id for n in out] == [texts[h.index] for h in ranked]  # top_n=None: all, reordered
    assert [n.node.metadata["retrieval_score"] for n in out] == [pytest.approx(0.1 * (h.index + 1)) for h in ranked]
    assert [n.score for n in nodes] == pytest.approx([0.1, 0.2, 0.3, 0.4])  # inputs are left as they were
    assert all(n.node.metadata == {} for n in nodes)
    assert out[0].node.get_content(metadata_mode=MetadataMode.EMBED) == texts[ranked[0].index]
    rerank.top_n = 2
    assert [n.node_id for n in rerank.postprocess_nodes(nodes, query_str="query")] == [
        texts[h.index] for h in ranked[:2]
    ]
    rerank.top_n = None
    rerank.score_threshold = ranked[1].score
    kept = rerank.postprocess_nodes(nodes, query_str="query")
    assert [n.node_id for n in kept] == [texts[h.index] for h in ranked if h.score >= ranked[1].score]
    assert rerank.postprocess_nodes([], query_str="query") == []


def test_events_and_callbacks(text_only):
    rerank, core = text_only
    events = []

    class Collect(BaseEventHandler):
        def handle(self, event, **kwargs):
            if isinstance(event, (ReRankStartEvent, ReRankEndEvent)):
                events.append(event)

    handler = Collect()
    root = get_dispatcher()
    root.add_event_handler(handler)
    debug = LlamaDebugHandler()
    rerank.callback_manager = CallbackManager([debug])
    try:
        nodes = scored(*[TextNode(text=t, id_=t) for t in ["one", "two", "three", "four"]])
        out = rerank.postprocess_nodes(nodes, query_str="three")
    finally:
        root.event_handlers.remove(handler)
        rerank.callback_manager = CallbackManager([])
    start, end = events
    assert isinstance(start, ReRankStartEvent) and isinstance(end, ReRankEndEvent)
    assert (start.query.query_str, start.top_n, start.model_name) == ("three", 3, rerank.model)
    assert [n.node_id for n in start.nodes] == ["one", "two", "three", "four"]
    assert [n.node_id for n in end.nodes] == [n.node_id for n in out]
    ((begin, finish),) = debug.get_event_pairs(CBEventType.RERANKING)
    assert begin.payload["query_str"] == "three" and begin.payload["top_k"] == 3
    assert [n.node_id for n in finish.payload["nodes"]] == [n.node_id for n in out]


async def test_async_equals_sync(vl, image_paths):
    rerank, _ = vl
    nodes = scored(TextNode(text="a dog", id_="t"), ImageNode(image_path=image_paths[0], id_="i"))
    sync = rerank.postprocess_nodes(nodes, query_str="dog")
    out = await rerank.apostprocess_nodes(nodes, query_str="dog")
    assert [(n.node_id, n.score) for n in out] == [(n.node_id, n.score) for n in sync]


@pytest.fixture
def image_server(tmp_path, image_paths):
    (tmp_path / "cat.jpg").write_bytes(Path(image_paths[0]).read_bytes())
    requests = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def test_image_urls_are_fetched_only_when_allowed(vl, image_server, image_paths):
    rerank, core = vl
    base, requests = image_server
    url = f"{base}/cat.jpg"
    nodes = scored(TextNode(text="a cat", id_="t"), ImageNode(image_url=url, id_="web"))
    with pytest.raises(MediaError) as error:
        rerank.postprocess_nodes(nodes, query_str="cat")
    assert str(error.value) == (
        f"document 1 (node 'web'): {url}: fetching URLs is off; build the model with allow_fetch=True to fetch it"
    )
    assert requests == []
    fetching = MultimodalRerank(core.load_settings.model_name_or_path, allow_fetch=True, fetch_allow_private=True, top_n=None)
    assert fetching.reranker.model is core.model
    out = fetching.postprocess_nodes(nodes, query_str="cat")
    assert len(requests) == 1
    web = next(n for n in out if n.node_id == "web")
    assert web.score == pytest.approx(float(core.score("cat", [Image(image_paths[0])])[0]), abs=ATOL)


def test_errors_name_the_node_id(vl, text_only, image_paths, tmp_path):
    rerank, _ = vl
    missing = str(tmp_path / "missing.jpg")
    with pytest.raises(MediaError) as error:
        rerank.postprocess_nodes(
            scored(TextNode(text="x", id_="t"), ImageNode(image_path=missing, id_="gone")), query_str="q"
        )
    assert str(error.value) == f"document 1 (node 'gone'): {missing}: no such file"

    text_rerank, _ = text_only
    with pytest.raises(ValueError) as error:
        text_rerank.postprocess_nodes(scored(ImageNode(image_path=image_paths[0], id_="photo")), query_str="q")
    assert str(error.value) == (
        f"document 0 (node 'photo'): Image({image_paths[0]}) is image, which this model does not support; "
        "it supports: text"
    )
    with pytest.raises(ValueError) as error:
        rerank.postprocess_nodes(scored(ImageNode(id_="blank")), query_str="q")
    assert str(error.value) == (
        "node 'blank': an ImageNode needs an image to be embedded or scored, "
        "but its image, image_path and image_url are all empty"
    )
    with pytest.raises(ValueError, match="^MultimodalRerank needs a query"):
        rerank.postprocess_nodes(scored(TextNode(text="x")))


def test_model_is_shared_and_settings_round_trip(tiny_qwen3vl_reranker_path):
    rerank = MultimodalRerank(model=tiny_qwen3vl_reranker_path, top_n=2, batch_size=4, max_length=512)
    assert MultimodalRerank.class_name() == "ModalbridgeMultimodalRerank"
    core = Reranker(tiny_qwen3vl_reranker_path, max_length=512, batch_size=16)
    assert rerank.reranker.model is core.model  # batch size is not a load setting
    rebuilt = MultimodalRerank.from_dict(rerank.to_dict())
    assert rebuilt.reranker.config() == rerank.reranker.config()
    assert MultimodalRerank.from_reranker(rerank.reranker, top_n=2).to_dict() == rerank.to_dict()
    own = set(MultimodalRerank.model_fields) - {"callback_manager"}
    assert all(MultimodalRerank.model_fields[name].description for name in own)
