"""``modalbridge index/search --host/--port`` against a real ``chroma run`` server (the ``chroma_server``
fixture of integration_tests/conftest.py)."""

from __future__ import annotations

import shutil

import chromadb
import numpy as np
import pytest

from modalbridge import Embedder, Image
from modalbridge.cli import main
from modalbridge.cli.indexing import file_id


@pytest.fixture()
def photos(tmp_path, image_paths):
    folder = tmp_path / "photos"
    folder.mkdir()
    for source in image_paths[3:6]:
        shutil.copy(source, folder)
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    return folder


def test_index_and_search_on_a_chroma_server(chroma_server, photos, tiny_clip_path, capsys, tmp_path):
    server = ["--host", chroma_server.host, "--port", str(chroma_server.port), "--collection", "cli-photos"]
    code = main(["index", str(photos), "--model", tiny_clip_path, "-q", *server])
    out = capsys.readouterr().out
    assert code == 1
    assert f"indexed into 'cli-photos' at {chroma_server.url}: 3 added, 0 updated, 0 unchanged, 1 failed" in out
    assert f"  {file_id(photos / 'broken.png')}: cannot decode image" in out
    assert not (tmp_path / "modalbridge-db").exists()  # nothing local

    client = chromadb.HttpClient(host=chroma_server.host, port=chroma_server.port)
    collection = client.get_collection("cli-photos")
    assert collection.count() == 3
    stored = collection.get(include=["embeddings"])
    expected = Embedder(tiny_clip_path).embed_documents([Image(i) for i in stored["ids"]])
    np.testing.assert_allclose(np.asarray(stored["embeddings"]), expected, rtol=1e-5, atol=1e-5)
    # The collection carries its model, so searching needs no --model.
    assert collection.configuration["embedding_function"].get_config()["model_name_or_path"] == tiny_clip_path

    assert main(["index", str(photos), "-q", *server]) == 1
    assert "0 added, 0 updated, 3 unchanged, 1 failed" in capsys.readouterr().out
    assert collection.count() == 3

    target = file_id(sorted(photos.glob("*.jpg"))[2])
    assert main(["search", "--image", target, "-k", "2", *server]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows[0] == ["1", "1.0000", "image", target] and len(rows) == 2


def test_unreachable_server_exits_2(tmp_path, capsys):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert main(["search", "cats", "--host", "127.0.0.1", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"modalbridge: error: cannot reach a Chroma server at http://127.0.0.1:{port}" in err
    assert "Traceback" not in err
