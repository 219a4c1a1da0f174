"""Late interaction on Chroma: fixed encodings, the matrix store, two-stage search against exhaustive MaxSim."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import chromadb
import numpy as np
import pytest
from PIL import Image as PILImage

from modalbridge import Image, MediaError
from modalbridge.chroma import LateInteractionCollection, is_late_interaction, rerank_query_result
from modalbridge.chroma.late_interaction import HASH_KEY
from modalbridge.fixed_encoding import MeanEncoding, MuveraEncoding, encoding_from_config
from modalbridge.multivector import MultiVectorEmbedder
from modalbridge.multivector_store import MultiVectorStore, MultiVectorStoreError, content_hash


def _pictures(n: int, seed: int = 3) -> list[PILImage.Image]:
    rng = np.random.default_rng(seed)
    return [PILImage.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)) for _ in range(n)]


def _client(path) -> chromadb.ClientAPI:
    return chromadb.PersistentClient(str(path))


@pytest.fixture(scope="module")
def colqwen(tiny_colqwen2_path):
    return MultiVectorEmbedder(tiny_colqwen2_path, device="cpu")


# -- fixed encodings -----------------------------------------------------------------------------------


def test_muvera_equals_its_definition_by_hand():
    rng = np.random.default_rng(0)
    encoding = MuveraEncoding(6, bits=2, repetitions=3, seed=5)
    document = rng.standard_normal((7, 6)).astype(np.float32)
    query = rng.standard_normal((4, 6)).astype(np.float32)
    planes = np.random.default_rng(5).standard_normal((6, 3 * 2)).astype(np.float32)

    def bucket(x, r):
        bits = (x @ planes[:, r * 2 : r * 2 + 2]) > 0
        return int(bits[0]) + 2 * int(bits[1])

    expected_query, expected_document = [], []
    for r in range(3):
        for b in range(4):
            in_bucket = [x for x in document if bucket(x, r) == b]
            if in_bucket:
                expected_document.append(np.mean(in_bucket, axis=0))
            else:  # the token whose SimHash bits are nearest to the bucket's
                bits_of = lambda x: [(x @ planes[:, r * 2 + i]) > 0 for i in range(2)]  # noqa: E731
                distance = [sum(a != bool((b >> i) & 1) for i, a in enumerate(bits_of(x))) for x in document]
                expected_document.append(document[int(np.argmin(distance))])
            expected_query.append(sum((x for x in query if bucket(x, r) == b), np.zeros(6, np.float32)))
    np.testing.assert_allclose(encoding.encode_document(document), np.concatenate(expected_document), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(encoding.encode_query(query), np.concatenate(expected_query), rtol=1e-5, atol=1e-6)
    assert encoding.dimension == 3 * 4 * 6


def test_muvera_dot_product_is_maxsim_when_each_bucket_holds_one_document_token():
    # one partition with no bits: one bucket; a single-token document: the dot product is exactly MaxSim
    rng = np.random.default_rng(1)
    encoding = MuveraEncoding(8, bits=0, repetitions=1)
    query = rng.standard_normal((5, 8)).astype(np.float32)
    document = rng.standard_normal((1, 8)).astype(np.float32)
    maxsim = (query @ document.T).max(axis=1).sum()
    assert encoding.encode_query(query) @ encoding.encode_document(document) == pytest.approx(maxsim, rel=1e-5)


def test_encodings_round_trip_and_validate():
    muvera = MuveraEncoding(16, bits=2, repetitions=4, projection_dim=8, seed=3)
    again = encoding_from_config(json.loads(json.dumps(muvera.config())))
    matrix = np.random.default_rng(2).standard_normal((9, 16)).astype(np.float32)
    assert again == muvera and again.dimension == 4 * 4 * 8
    np.testing.assert_array_equal(again.encode_document(matrix), muvera.encode_document(matrix))
    np.testing.assert_array_equal(MeanEncoding(16).encode_query(matrix), matrix.mean(axis=0))
    with pytest.raises(ValueError, match=r"expected a \(tokens, 16\) matrix"):
        muvera.encode_documents([matrix[:, :8]])
    with pytest.raises(ValueError, match="unknown fixed encoding 'nope'"):
        encoding_from_config({"name": "nope"})
    with pytest.raises(ValueError, match="invalid muvera encoding config"):
        encoding_from_config({**muvera.config(), "colour": 1})


# -- the store -----------------------------------------------------------------------------------------


def test_store_keeps_matrices_by_id_and_hash(tmp_path):
    store = MultiVectorStore(tmp_path / "m.sqlite", token_dim=4, owner="c1")
    a, b = np.arange(8, dtype=np.float32).reshape(2, 4), np.ones((3, 4), np.float32)
    store.put(["a", "b"], ["h1", "h2"], [a, b])
    got = store.get(["b", "a", "missing"])
    assert set(got) == {"a", "b"} and got["b"].content_hash == "h2"
    np.testing.assert_array_equal(got["a"].matrix, a)
    store.put(["a"], ["h3"], [b])  # a new version; the old one stays until pruned
    assert store.content_hashes(["a", "b", "x"]) == {"a": "h3", "b": "h2"} and store.versions() == 3
    np.testing.assert_array_equal(store.get(["a"], ["h1"])["a"].matrix, a)
    assert store.present(["a", "a", "b"], ["h1", "h9", "h2"]) == {"a", "b"}
    assert store.prune(["a"], ["h3"]) == 1 and store.get(["a"], ["h1"]) == {} and len(store) == 2
    assert store.delete(["a", "zzz"]) == 1 and store.ids() == ["b"] and "a" not in store and len(store) == 1
    with pytest.raises(ValueError, match=r"id 'c': expected a \(tokens, 4\) matrix"):
        store.put(["c"], ["h"], [np.ones((2, 5))])
    with pytest.raises(MultiVectorStoreError, match="holds 4-d token vectors, not 8-d"):
        MultiVectorStore(tmp_path / "m.sqlite", token_dim=8)
    with pytest.raises(MultiVectorStoreError, match="belongs to 'c1', not to 'c2'"):
        MultiVectorStore(tmp_path / "m.sqlite", owner="c2")
    half = MultiVectorStore(tmp_path / "h.sqlite", token_dim=4, dtype="float16")
    half.put(["a"], ["h"], [a])
    np.testing.assert_array_equal(half.get(["a"])["a"].matrix, a.astype(np.float16).astype(np.float32))


def test_content_hash_is_about_content(tmp_path, image_paths):
    picture = _pictures(1)[0]
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(open(image_paths[0], "rb").read())
    assert content_hash(Image(image_paths[0])) == content_hash(Image(str(copy)))
    assert content_hash(Image(picture)) == content_hash(picture.copy()) != content_hash(Image(np.asarray(picture)))
    assert content_hash("a cat") != content_hash("a cat ")
    with pytest.raises(ValueError, match="nothing.jpg.*cannot read the file"):
        content_hash(Image(str(tmp_path / "nothing.jpg")))


# -- Chroma: two stages ----------------------------------------------------------------------------------


def test_two_stage_search_equals_exhaustive_maxsim(colqwen, tmp_path):
    pictures = _pictures(12)
    ids = [f"p{i}" for i in range(12)]
    pages = LateInteractionCollection.create(_client(tmp_path / "db"), "pages", colqwen, repetitions=4)
    report = pages.upsert(ids, [Image(p) for p in pictures], metadatas=[{"n": i} for i in range(12)])
    assert report.embedded == ids and pages.count() == 12 and is_late_interaction(pages.collection)

    query = "a striped blue pattern"
    query_matrix = colqwen.embed_query(query)
    exhaustive = colqwen.model.similarity([query_matrix], colqwen.embed_documents([Image(p) for p in pictures])).numpy()[0]
    order = np.argsort(-exhaustive, kind="stable")

    everything = pages.query(query, n_results=5, candidates=12)  # every record is a candidate: exact
    assert everything.ids == [ids[i] for i in order[:5]]
    assert everything.scores == pytest.approx([float(exhaustive[i]) for i in order[:5]], rel=1e-6)
    assert everything.metadatas[0] == {"n": int(order[0])}  # the content hash is not shown

    few = pages.query(query, n_results=3, candidates=6)  # exact MaxSim order among the first-stage candidates
    first_stage = pages.collection.query(query_embeddings=[pages.index.encoding.encode_query(query_matrix)], n_results=6)["ids"][0]
    candidates_order = sorted(first_stage, key=lambda i: -exhaustive[ids.index(i)])
    assert few.ids == candidates_order[:3] and few.candidates == 6
    assert [first_stage[r] for r in few.first_stage_ranks] == few.ids


def test_update_delete_and_unchanged_content(colqwen, tmp_path):
    pictures = _pictures(4)
    pages = LateInteractionCollection.create(_client(tmp_path / "db"), "pages", colqwen, first_stage="mean")
    pages.upsert(["a", "b", "c"], [Image(p) for p in pictures[:3]])
    store = pages.index.store
    again = pages.upsert(["a", "b", "c"], [Image(p) for p in pictures[:3]])
    assert again.embedded == [] and again.unchanged == ["a", "b", "c"]

    # a new version written to the store but not (yet) to Chroma: searches keep using the version Chroma holds
    before = pages.query("anything", n_results=3)
    pages.index.prepare_documents(["b"], [Image(pictures[3])])
    assert store.versions() == 4
    unchanged_search = pages.query("anything", n_results=3)
    assert unchanged_search.ids == before.ids and unchanged_search.scores == before.scores

    updated = pages.upsert(["b"], [Image(pictures[3])])  # same id, new content: now in Chroma too
    assert updated.unchanged == ["b"] and store.versions() == 3  # its matrix was stored; the old one is gone
    expected = colqwen.embed_documents([Image(pictures[3])])[0]
    np.testing.assert_array_equal(store.get(["b"])["b"].matrix, expected)
    record = pages.collection.get(ids=["b"], include=["embeddings", "metadatas"])
    np.testing.assert_allclose(record["embeddings"][0], expected.mean(axis=0), rtol=1e-6)
    assert record["metadatas"][0][HASH_KEY] == content_hash(Image(pictures[3]))

    pages.delete(["a"])
    assert pages.collection.get(ids=["a"])["ids"] == [] and "a" not in store and len(store) == 2
    assert set(pages.query("anything", n_results=5).ids) == {"b", "c"}

    # a record changed behind the index's back is refused by name, never scored with another's tokens
    pages.collection.update(ids=["c"], metadatas=[{HASH_KEY: "sha256:other"}])
    with pytest.raises(MultiVectorStoreError, match=r"no stored token vectors for id\(s\) 'c' matching the record's content hash"):
        pages.query("anything", n_results=2)


def test_errors_name_the_record(colqwen, tmp_path):
    pages = LateInteractionCollection.create(_client(tmp_path / "db"), "pages", colqwen)
    missing = str(tmp_path / "gone.png")
    with pytest.raises(ValueError, match=r"item 1 \(id 'b'\): .*gone\.png"):
        pages.upsert(["a", "b"], ["some text", Image(missing)])
    assert pages.count() == 0
    report = pages.upsert(["a", "b", "c"], ["some text", Image(missing), Image(_pictures(1)[0])], collect_errors=True)
    assert report.ids == ["a", "c"] and list(report.errors) == [1] and "gone.png" in str(report.errors[1])
    assert pages.collection.get(ids=["a"], include=["documents"])["documents"] == ["some text"]
    refused = pages.upsert(["m1", "m2"], ["text one", "text two"], metadatas=[{"ok": 1}, {"bad": {"nested": 1}}], collect_errors=True)
    assert refused.ids == ["m1"] and list(refused.errors) == [1]
    assert str(refused.errors[1]).startswith("item 1 (id 'm2'): Chroma refused it")
    assert pages.collection.get(ids=["m2"])["ids"] == []
    with pytest.raises(ValueError, match="ids given twice: 'a'"):
        pages.upsert(["a", "a"], ["x", "y"])
    with pytest.raises(MediaError):
        pages.query(Image(missing))
    store_file = pages.index.store.path
    pages.index.store.close()
    LateInteractionCollection.delete_collection(_client(tmp_path / "db"), "pages")
    assert not os.path.exists(store_file)
    assert [c.name for c in _client(tmp_path / "db").list_collections()] == []


def test_upsert_stream_takes_a_generator_and_multivector_streams(colqwen, tmp_path):
    pictures = _pictures(5, seed=9)
    pages = LateInteractionCollection.create(_client(tmp_path / "db"), "pages", colqwen, first_stage="mean")
    records = ({"id": f"s{k}", "item": Image(p), "metadata": {"k": k}} for k, p in enumerate(pictures))
    report = pages.upsert_stream(records)
    assert report.ids == [f"s{k}" for k in range(5)] and pages.count() == 5 and not report.errors
    expected = colqwen.embed_documents([Image(p) for p in pictures])
    for k, matrix in enumerate(expected):
        np.testing.assert_array_equal(pages.index.store.get([f"s{k}"])[f"s{k}"].matrix, matrix)
    streamed = list(colqwen.stream(Image(p) for p in pictures))  # the core's streaming path, token matrices out
    assert [r.index for r in streamed] == list(range(5))
    for result, matrix in zip(streamed, expected):
        np.testing.assert_array_equal(result.vector, matrix)
    with pytest.raises(TypeError, match="record 0: expected a mapping with 'id' and 'item'"):
        pages.upsert_stream([("s9", "text")])


def test_reopens_in_a_fresh_process(colqwen, tiny_colqwen2_path, tmp_path):
    pictures = _pictures(6)
    pages = LateInteractionCollection.create(_client(tmp_path / "db"), "pages", colqwen, bits=2, repetitions=3)
    pages.upsert([f"p{i}" for i in range(6)], [Image(p) for p in pictures])
    expected = pages.query("red and green", n_results=4, candidates=6)
    script = textwrap.dedent(
        f"""
        import json, chromadb
        from modalbridge.chroma import LateInteractionCollection
        pages = LateInteractionCollection.open(chromadb.PersistentClient({str(tmp_path / 'db')!r}), "pages", device="cpu")
        hits = pages.query("red and green", n_results=4, candidates=6)
        print(json.dumps({{"ids": hits.ids, "scores": hits.scores, "encoding": pages.index.encoding.config(),
                          "records": len(pages.index.store)}}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["ids"] == expected.ids and got["records"] == 6
    assert got["scores"] == pytest.approx(expected.scores, rel=1e-6)
    assert got["encoding"] == pages.index.encoding.config()
    with pytest.raises(ValueError, match=r"collection 'pages' holds vectors of .*; token_pool_factor \(None -> 2\) would change them"):
        LateInteractionCollection.open(_client(tmp_path / "db"), "pages", token_pool_factor=2)
    # every setting the declaration stores is checked, not a list of some: max_length, pdf_dpi, backend too
    stored = pages.index.embedder.config()
    with pytest.raises(ValueError, match=r"max_length \(None -> 16\), pdf_dpi \(None -> 72\.0\) would change them"):
        LateInteractionCollection.open(_client(tmp_path / "db"), "pages", max_length=16, pdf_dpi=72.0)
    # the stored value itself, and machine-local settings, are fine
    reopened = LateInteractionCollection.open(
        _client(tmp_path / "db"), "pages", max_length=stored.get("max_length"), batch_size=2, decode_workers=1
    )
    assert reopened.query("red and green", n_results=4, candidates=6).ids == expected.ids


def test_maxsim_reranks_a_single_vector_result(colqwen, tiny_clip_path, tmp_path):
    from modalbridge.chroma import MultimodalDataLoader, MultimodalEmbeddingFunction

    paths = []
    for k, picture in enumerate(_pictures(8)):
        paths.append(str(tmp_path / f"i{k}.png"))
        picture.save(paths[-1])
    collection = _client(tmp_path / "db").create_collection(
        "clip", embedding_function=MultimodalEmbeddingFunction(tiny_clip_path, device="cpu"), data_loader=MultimodalDataLoader()
    )
    collection.add(ids=[f"i{k}" for k in range(8)], uris=paths)
    hits = collection.query(query_texts=["a blue square"], n_results=6, include=["uris", "distances"])
    reranked = rerank_query_result(hits, "a blue square", colqwen, top_n=4)  # a MultiVectorEmbedder ranks like a Reranker
    candidates = [Image(uri) for uri in hits["uris"][0]]
    scores = colqwen.model.similarity([colqwen.embed_query("a blue square")], colqwen.embed_documents(candidates)).numpy()[0]
    order = np.argsort(-scores, kind="stable")[:4]
    assert reranked.ids == [hits["ids"][0][i] for i in order]
    assert reranked.scores == pytest.approx(scores[order].tolist(), rel=1e-6)
