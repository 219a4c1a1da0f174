"""The Chroma adapter against real Chroma collections (EphemeralClient): documents, image arrays and
URIs of images, audio and video; text-to-image queries; include=["data"]; atomic failures; config
updates; and reranking a real query result. Tiny random models: the assertions are exact (stored
vectors equal the core's, an item queried with itself is top-1 at distance ~0), not semantic."""

from __future__ import annotations

import re
import uuid

import numpy as np
import pytest

import chromadb
import soundfile as sf

from modalbridge import Audio, Embedder, Image, MediaError, Reranker, Video  # noqa: E402
from modalbridge.chroma import (  # noqa: E402
    MultimodalDataLoader,
    MultimodalEmbeddingFunction,
    rerank_query_result,
    update_embedding_function,
)
from modalbridge.media import decode_image  # noqa: E402


@pytest.fixture(scope="module")
def client():
    return chromadb.EphemeralClient()


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def photos(image_paths) -> list[np.ndarray]:
    """Two small RGB arrays from the real photos, as add(images=...) takes them."""
    from PIL import Image as PILImage

    arrays = []
    for path in image_paths[:2]:
        with PILImage.open(path) as image:
            arrays.append(np.array(image.convert("RGB").resize((48, 36))))
    return arrays


@pytest.fixture(scope="module")
def short_clips(audio_paths, tmp_path_factory) -> list[str]:
    """Real recordings cut to 0.6 s (the tiny CLAP crops longer clips at random offsets)."""
    folder = tmp_path_factory.mktemp("chroma_audio")
    paths = []
    for source in audio_paths[:2]:
        waveform, rate = sf.read(source, dtype="float32", frames=int(0.6 * 22_050))
        path = folder / (source.rsplit("/", 1)[-1].rsplit(".", 1)[0] + ".wav")
        sf.write(path, waveform, rate)
        paths.append(str(path))
    return paths


def _stored(collection, ids: list[str]) -> np.ndarray:
    got = collection.get(ids=ids, include=["embeddings"])
    by_id = dict(zip(got["ids"], got["embeddings"]))
    return np.stack([by_id[i] for i in ids])


def test_documents_images_and_uris(client, tiny_clip_path, photos, image_paths):
    ef = MultimodalEmbeddingFunction(tiny_clip_path)
    collection = client.create_collection(_name("clip"), embedding_function=ef, data_loader=MultimodalDataLoader())
    assert collection.configuration_json["hnsw"]["space"] == "cosine"
    texts = ["a cat on a sofa", "two dogs in the snow", image_paths[5]]  # a path-like document is text
    collection.add(ids=["d0", "d1", "d2"], documents=texts, metadatas=[{"kind": "text"}] * 3)
    collection.add(ids=["i0", "i1"], images=photos, metadatas=[{"kind": "image"}] * 2)
    collection.add(ids=["u0", "u1"], uris=image_paths[2:4], metadatas=[{"kind": "image"}] * 2)
    assert collection.count() == 7

    embedder = Embedder(tiny_clip_path)
    ids = ["d0", "d1", "d2", "i0", "i1", "u0", "u1"]
    expected = embedder.embed_documents(texts + [Image(p) for p in photos] + [Image(p) for p in image_paths[2:4]])
    np.testing.assert_allclose(_stored(collection, ids), expected, atol=1e-6)

    # An item queried with itself is top-1 at distance ~0 (CLIP has no query prompt).
    by_image = collection.query(query_images=[photos[1]], n_results=2)
    assert by_image["ids"][0][0] == "i1" and by_image["distances"][0][0] == pytest.approx(0, abs=1e-5)
    by_uri = collection.query(query_uris=[image_paths[3]], n_results=2)
    assert by_uri["ids"][0][0] == "u1" and by_uri["distances"][0][0] == pytest.approx(0, abs=1e-5)
    by_text = collection.query(query_texts=[image_paths[5]], n_results=1)
    assert by_text["ids"] == [["d2"]]  # the path was embedded as text, not read as an image

    # Cross-modal: a text query ranks the images exactly by the core's cosine distances.
    hits = collection.query(query_texts=["a cat"], where={"kind": "image"}, n_results=4)
    query = embedder.embed_queries(["a cat"])[0]
    images = dict(zip(["i0", "i1", "u0", "u1"], expected[3:]))
    distance = {k: 1 - float(v @ query / (np.linalg.norm(v) * np.linalg.norm(query))) for k, v in images.items()}
    assert hits["ids"][0] == sorted(distance, key=distance.get)
    np.testing.assert_allclose(hits["distances"][0], sorted(distance.values()), atol=1e-5)

    # include=["data"]: the loader's arrays for URI records, None for the others.
    got = collection.get(ids=["u0", "d0", "i0"], include=["data", "uris"])
    data = dict(zip(got["ids"], got["data"]))
    np.testing.assert_array_equal(data["u0"], np.asarray(decode_image(Image(image_paths[2]))))
    assert data["d0"] is None and data["i0"] is None  # add(images=...) stores no image, only its vector
    queried = collection.query(query_uris=[image_paths[2]], n_results=1, include=["data", "distances"])
    np.testing.assert_array_equal(queried["data"][0][0], data["u0"])


def test_one_collection_mixes_text_images_and_video(client, tiny_qwen3vl_path, photos, image_paths, video_path):
    ef = MultimodalEmbeddingFunction(tiny_qwen3vl_path)
    collection = client.create_collection(_name("qwen"), embedding_function=ef, data_loader=MultimodalDataLoader())
    collection.add(ids=["d0", "d1"], documents=["a red bicycle", "a bowl of soup"])
    collection.add(ids=["i0"], images=[photos[0]])
    collection.add(ids=["u0", "v0"], uris=[image_paths[4], video_path])

    embedder = Embedder(tiny_qwen3vl_path)
    expected = embedder.embed_documents(
        ["a red bicycle", "a bowl of soup", Image(photos[0]), Image(image_paths[4]), Video(video_path)]
    )
    np.testing.assert_allclose(_stored(collection, ["d0", "d1", "i0", "u0", "v0"]), expected, atol=1e-6)

    # Queries use the query prompt: the same as querying with the core's query embeddings.
    for kwargs, item in [
        ({"query_uris": [video_path]}, Video(video_path)),
        ({"query_images": [photos[0]]}, Image(photos[0])),
        ({"query_texts": ["soup"]}, "soup"),
    ]:
        got = collection.query(n_results=5, **kwargs)
        want = collection.query(query_embeddings=embedder.embed_queries([item]), n_results=5)
        assert got["ids"] == want["ids"]
        np.testing.assert_allclose(got["distances"], want["distances"], atol=1e-6)
    # include=["data"] hands the video back as a reference (no frames materialized) unless asked for frames.
    assert collection.get(ids=["v0"], include=["data"])["data"][0] == Video(video_path)
    frames = MultimodalDataLoader(decode_video=True)([video_path])[0]
    assert isinstance(frames, Video) and frames.source.shape == (8, 32, 32, 3)


def test_audio_uris(client, tiny_clap_path, short_clips):
    ef = MultimodalEmbeddingFunction(tiny_clap_path)
    collection = client.create_collection(_name("clap"), embedding_function=ef, data_loader=MultimodalDataLoader())
    collection.add(ids=["a0", "a1"], uris=short_clips)
    collection.add(ids=["d0"], documents=["a bird singing"])
    expected = Embedder(tiny_clap_path).embed_documents([Audio(p) for p in short_clips])
    np.testing.assert_allclose(_stored(collection, ["a0", "a1"]), expected, atol=1e-6)
    hits = collection.query(query_uris=[short_clips[1]], n_results=3, include=["distances", "data"])
    assert hits["ids"][0][0] == "a1" and hits["distances"][0][0] == pytest.approx(0, abs=1e-5)
    assert isinstance(hits["data"][0][0], Audio) and hits["data"][0][0].sampling_rate == 22_050


def test_failing_adds_store_nothing_and_name_the_uri(client, tiny_clip_path, image_paths, short_clips, tmp_path):
    collection = client.create_collection(
        _name("fail"), embedding_function=MultimodalEmbeddingFunction(tiny_clip_path), data_loader=MultimodalDataLoader()
    )
    collection.add(ids=["d0"], documents=["kept"])
    missing = str(tmp_path / "missing.jpg")
    cases = [
        (dict(uris=[image_paths[0], short_clips[0]]), ValueError,
         rf"item 1 \(uri '{re.escape(short_clips[0])}'\): Audio\(.*\) is audio, which this model does not support; "
         r"it supports: text, image in add\."),
        (dict(uris=[image_paths[0], missing]), MediaError, rf"uri 1: {re.escape(missing)}: no such file in add\."),
        (dict(uris=[image_paths[0], str(tmp_path / "notes.txt")]), MediaError, r"uri 1: .*notes\.txt: cannot tell whether"),
        (dict(images=[np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8)]), MediaError,
         r"item 1: an array of shape \(4, 4\): an image array must have 3 dimensions"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            collection.add(ids=["n0", "n1"], **kwargs)
        assert collection.count() == 1
        assert collection.get(ids=["n0", "n1"])["ids"] == []
    with pytest.raises(ValueError, match=r"item 0 \(uri .*\): Audio\(.*\) is audio.* in query\."):
        collection.query(query_uris=[short_clips[0]])


def test_configuration_updates(client, tiny_clip_path):
    collection = client.create_collection(_name("upd"), embedding_function=MultimodalEmbeddingFunction(tiny_clip_path))
    collection.add(ids=["d0"], documents=["a"])
    before = client.get_collection(collection.name).configuration_json["embedding_function"]["config"]
    update_embedding_function(collection, MultimodalEmbeddingFunction(tiny_clip_path, batch_size=4, device="cpu"))
    stored = client.get_collection(collection.name).configuration_json["embedding_function"]["config"]
    # batch size and device are this machine's choice: accepted, and never stored with the collection
    assert stored == before and "batch_size" not in stored and "device" not in stored

    with pytest.raises(ValueError, match=r"cannot change normalize \(False -> True\) of this collection's embedding function"):
        update_embedding_function(collection, MultimodalEmbeddingFunction(tiny_clip_path, normalize=True))
    reopened = client.get_collection(collection.name).configuration_json["embedding_function"]["config"]
    assert reopened == stored  # refused before anything was sent
    # Chroma's own modify() refuses it too (but only after sending it: see update_embedding_function).
    with pytest.raises(ValueError, match=r"cannot change model_name_or_path"):
        collection.modify(configuration={"embedding_function": MultimodalEmbeddingFunction("other/model")})


def test_rerank_a_real_query_result(client, tiny_qwen3vl_path, tiny_qwen3vl_reranker_path, image_paths):
    collection = client.create_collection(
        _name("rr"), embedding_function=MultimodalEmbeddingFunction(tiny_qwen3vl_path), data_loader=MultimodalDataLoader()
    )
    collection.add(ids=["d0", "d1"], documents=["a man riding a horse", "a plate of food"])
    collection.add(ids=["u0", "u1"], uris=image_paths[6:8])
    hits = collection.query(query_texts=["a horse"], n_results=4, include=["documents", "uris", "metadatas", "distances"])
    reranker = Reranker(tiny_qwen3vl_reranker_path)
    ranked = rerank_query_result(hits, "a horse", reranker, top_n=3)

    row = dict(zip(hits["ids"][0], zip(hits["documents"][0], hits["uris"][0], hits["distances"][0])))
    items = [doc if uri is None else Image(uri) for doc, uri, _ in row.values()]
    scores = dict(zip(row, reranker.score("a horse", items)))
    assert ranked.ids == sorted(scores, key=lambda k: -scores[k])[:3]
    np.testing.assert_allclose(ranked.scores, [scores[i] for i in ranked.ids], rtol=1e-6)
    assert ranked.distances == [row[i][2] for i in ranked.ids]
    assert ranked.uris == [row[i][1] for i in ranked.ids] and ranked.documents == [row[i][0] for i in ranked.ids]
    assert ranked.sources == ["document" if row[i][1] is None else "uri" for i in ranked.ids]


def test_example_runs_offline(tiny_clip_path, tiny_qwen3vl_reranker_path, tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "chroma_retrieve_rerank.py"
    spec = importlib.util.spec_from_file_location("chroma_retrieve_rerank", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    args = ["--model", tiny_clip_path, "--reranker", tiny_qwen3vl_reranker_path, "--num-images", "6", "--k", "4",
            "--top-n", "2", "--persist", str(tmp_path / "db")]
    assert example.main(args) == 0
    first = capsys.readouterr().out
    assert "indexed 6 images" in first and "distance space 'cosine'" in first and "score" in first
    assert example.main(args[2:]) == 0  # reopened from disk with the stored function; --model not needed
    second = capsys.readouterr().out
    assert "reopened 'modalbridge-example'" in second
    retrieved = lambda out: out.split("retrieved")[1].split("reranked")[0]  # noqa: E731
    assert retrieved(first) == retrieved(second)
