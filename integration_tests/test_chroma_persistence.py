"""Persistence of the embedding function: a collection made in this process is reopened in a FRESH
Python process with ``client.get_collection(name)`` and no function, and gives the same results; the
same through a real Chroma server (HttpClient); and a stored ``trust_remote_code=True`` needs an opt-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid

import numpy as np
import pytest

import chromadb

from modalbridge.chroma import ENV_TRUST_REMOTE_CODE, MultimodalDataLoader, MultimodalEmbeddingFunction  # noqa: E402

N_RESULTS = 5

REOPEN = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import chromadb

    spec = json.loads(sys.argv[1])
    client = chromadb.PersistentClient(spec["path"])
    out = {}
    try:  # Chroma cannot know which module defines "modalbridge" until it is imported
        client.get_collection(spec["name"]).query(query_texts=["a"], n_results=1)
    except ValueError as exc:
        out["unregistered_error"] = str(exc)

    import modalbridge.chroma as mb_chroma  # registers "modalbridge" with Chroma
    from modalbridge.loading import MODEL_CACHE

    collection = client.get_collection(spec["name"], data_loader=mb_chroma.MultimodalDataLoader())
    out.update(loads_after_get=MODEL_CACHE.loads, stored=collection.configuration_json["embedding_function"])
    for key, kwargs in [
        ("texts", {"query_texts": spec["texts"]}),
        ("images", {"query_images": [np.load(spec["image"])]}),
        ("uris", {"query_uris": spec["uris"]}),
    ]:
        result = collection.query(n_results=spec["n"], **kwargs)
        out[key] = {"ids": result["ids"], "distances": result["distances"]}

    remote = client.get_collection(spec["remote"])
    try:
        remote.query(query_texts=["a"], n_results=1)
        out["remote_error"] = None
    except Exception as exc:
        out["remote_error"] = f"{type(exc).__name__}: {exc}"
    mb_chroma.allow_remote_code()
    out["remote_after_opt_in"] = remote.query(query_texts=["a"], n_results=1)["ids"]
    print("RESULT " + json.dumps(out))
    """
)


def _results(collection, texts, image, uris) -> dict:
    out = {}
    for key, kwargs in [
        ("texts", {"query_texts": texts}),
        ("images", {"query_images": [image]}),
        ("uris", {"query_uris": uris}),
    ]:
        result = collection.query(n_results=N_RESULTS, **kwargs)
        out[key] = {"ids": result["ids"], "distances": result["distances"]}
    return out


def _same(got: dict, want: dict) -> None:
    for key in ("texts", "images", "uris"):
        assert got[key]["ids"] == want[key]["ids"], key
        np.testing.assert_allclose(got[key]["distances"], want[key]["distances"], atol=1e-6, err_msg=key)


@pytest.fixture(scope="module")
def photo(image_paths) -> np.ndarray:
    from PIL import Image as PILImage

    with PILImage.open(image_paths[8]) as image:
        return np.array(image.convert("RGB").resize((40, 30)))


def _fill(collection, image_paths, photo) -> None:
    collection.add(ids=["d0", "d1", "d2"], documents=["a giraffe", "a kitchen", "a train at a station"])
    collection.add(ids=["i0"], images=[photo])
    collection.add(ids=["u0", "u1", "u2"], uris=image_paths[9:12])


def test_reopened_in_a_fresh_process(tiny_clip_path, image_paths, photo, tmp_path):
    path = str(tmp_path / "db")
    client = chromadb.PersistentClient(path)
    ef = MultimodalEmbeddingFunction(tiny_clip_path)
    collection = client.create_collection("media", embedding_function=ef, data_loader=MultimodalDataLoader())
    _fill(collection, image_paths, photo)
    texts, uris = ["a giraffe", "a train"], [image_paths[10]]
    want = _results(collection, texts, photo, uris)
    assert want["uris"]["ids"][0][0] == "u1" and want["images"]["ids"][0][0] == "i0"

    # A collection whose stored function runs remote code (the tiny model has none; the flag is what counts).
    remote = client.create_collection(
        "remote", embedding_function=MultimodalEmbeddingFunction(tiny_clip_path, trust_remote_code=True)
    )
    remote.add(ids=["r0"], documents=["a"])

    np.save(tmp_path / "photo.npy", photo)
    spec = {"path": path, "name": "media", "remote": "remote", "texts": texts, "uris": uris,
            "image": str(tmp_path / "photo.npy"), "n": N_RESULTS}
    env = {k: v for k, v in os.environ.items() if k != ENV_TRUST_REMOTE_CODE}
    env["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", REOPEN, json.dumps(spec)], capture_output=True, text=True, env=env, timeout=300,
        cwd=str(tmp_path),
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    got = json.loads(lines[-1][len("RESULT "):])

    assert got["loads_after_get"] == 0  # reopening loads no model; the first query does
    assert got["stored"] == {"type": "known", "name": "modalbridge", "config": ef.get_config()}
    _same(got, want)
    assert got["unregistered_error"].startswith("Embedding function modalbridge not found.")
    # Chroma wraps build_from_config's RemoteCodeNotAllowedError in a ValueError with its message:
    assert got["remote_error"].startswith("ValueError: Could not build embedding function modalbridge from config")
    assert f"model '{tiny_clip_path}' (revision None) has trust_remote_code=True" in got["remote_error"]
    assert "allow_remote_code()" in got["remote_error"] and ENV_TRUST_REMOTE_CODE in got["remote_error"]
    assert got["remote_after_opt_in"] == [["r0"]]


def test_http_client_against_a_real_server(chroma_server, tiny_clip_path, image_paths, photo):
    name = f"http-{uuid.uuid4().hex[:8]}"
    client = chromadb.HttpClient(host=chroma_server.host, port=chroma_server.port)
    ef = MultimodalEmbeddingFunction(tiny_clip_path)
    collection = client.create_collection(name, embedding_function=ef, data_loader=MultimodalDataLoader())
    try:
        _fill(collection, image_paths, photo)
        texts, uris = ["a kitchen"], [image_paths[9]]
        want = _results(collection, texts, photo, uris)
        assert want["texts"]["ids"][0][0] == "d1" and want["uris"]["ids"][0][0] == "u0"

        # Another client: the function is rebuilt from the configuration the server stored.
        other = chromadb.HttpClient(host=chroma_server.host, port=chroma_server.port)
        reopened = other.get_collection(name, data_loader=MultimodalDataLoader())
        assert reopened.configuration_json["embedding_function"] == {
            "type": "known", "name": "modalbridge", "config": ef.get_config()
        }
        assert reopened.configuration_json["hnsw"]["space"] == "cosine"
        _same(_results(reopened, texts, photo, uris), want)
        got = reopened.get(ids=["u2"], include=["data"])
        assert got["data"][0].shape[2] == 3
    finally:
        client.delete_collection(name)
