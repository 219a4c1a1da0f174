"""Ingest that survives faults, against real Chroma: writes above the server's batch limit, idempotent
re-runs, stores that refuse one record, `modalbridge index` killed with SIGKILL midway and run again,
and a `chroma run` server killed and restarted while `modalbridge index` writes into it.

References are independent of the code under test: direct ``collection.upsert`` calls (the server's
own limit), the core Embedder's vectors for the same files, and the files on disk.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import chromadb
import numpy as np
import pytest

from modalbridge import Embedder, Image
from modalbridge.cli import main
from modalbridge.chroma import ChromaUnavailableError, ChromaWriter, MultimodalEmbeddingFunction, RetryPolicy



def _settings() -> chromadb.Settings:
    """Fresh settings per client: chromadb writes the server's address into the object it is given."""
    return chromadb.Settings(anonymized_telemetry=False)
PHOTOS = 120


def reference_vectors(model: str, paths: list[str]) -> dict[str, np.ndarray]:
    """The core's document vectors for the good files (text files by content), computed directly."""
    items = [Path(p).read_text(encoding="utf-8") if p.endswith((".txt", ".md")) else Image(p) for p in paths]
    return dict(zip(paths, Embedder(model).embed_documents(items)))


def assert_stored_exactly(collection, expected: dict[str, np.ndarray]) -> None:
    records = collection.get(include=["embeddings", "metadatas"])
    assert collection.count() == len(expected)
    assert sorted(records["ids"]) == sorted(expected)  # each good file once, nothing else
    for record_id, vector, meta in zip(records["ids"], records["embeddings"], records["metadatas"]):
        np.testing.assert_allclose(vector, expected[record_id], rtol=1e-5, atol=1e-5)
        assert meta["path"] == record_id and meta["size"] == os.path.getsize(record_id)


class IndexRun:
    """``modalbridge index`` as a user runs it (the console script), its progress read as it goes."""

    def __init__(self, *args: str) -> None:
        script = Path(sys.executable).with_name("modalbridge")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [str(script), "index", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self.progress = 0
        self.stderr = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while chunk := self.process.stderr.read1(4096):
            self.stderr += chunk
            done = re.findall(rb"(\d+)/\d+ \[", chunk)  # tqdm: "...| 40/242 [00:01<..."
            if done:
                self.progress = max(self.progress, int(done[-1]))

    def wait_for_progress(self, files: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.progress < files:
            if self.process.poll() is not None:
                pytest.fail(f"modalbridge index ended before storing {files} files:\n{self.stderr.decode()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no progress to {files} files in {timeout} s:\n{self.stderr.decode()[-3000:]}")
            time.sleep(0.02)

    def finish(self, timeout: float = 180) -> tuple[int, str]:
        stdout, _ = self.process.communicate(timeout=timeout)
        self._reader.join(5)
        return self.process.returncode, stdout.decode()


def _summary_counts(stdout: str) -> dict[str, int]:
    match = re.search(r"(\d+) added, (\d+) updated, (\d+) unchanged, (\d+) failed", stdout)
    assert match, stdout
    return dict(zip(("added", "updated", "unchanged", "failed"), map(int, match.groups())))


# -- the writer on a real server ----------------------------------------------------------------------


def test_writer_splits_writes_above_the_servers_limit_and_is_idempotent(chroma_server):
    client = chromadb.HttpClient(host=chroma_server.host, port=chroma_server.port, settings=_settings())
    limit = client.get_max_batch_size()
    total = limit + 37
    ids = [f"r{n}" for n in range(total)]
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((total, 4)).astype(np.float32)

    collection = client.create_collection("writer-limit", embedding_function=None)
    with pytest.raises(Exception, match="max batch size|batch size"):  # the server's limit is real
        collection.upsert(ids=ids, embeddings=vectors)
    assert collection.count() == 0

    writer = ChromaWriter(collection)
    assert writer.max_batch_size == limit
    assert writer.upsert(ids, vectors, metadatas=[{"n": n} for n in range(total)]) == total
    assert collection.count() == total
    again = vectors + 1
    writer.upsert(ids, again)  # a re-run: replaced, never stored twice
    assert collection.count() == total
    probe = collection.get(ids=[ids[0], ids[limit], ids[-1]], include=["embeddings", "metadatas"])
    np.testing.assert_allclose(np.asarray(probe["embeddings"]), again[[0, limit, total - 1]], rtol=1e-6)
    assert [m["n"] for m in probe["metadatas"]] == [0, limit, total - 1]  # metadata kept by the re-run

    with pytest.raises(ValueError, match="record 'r1' appears twice"):
        writer.upsert(["r0", "r1", "r1"], vectors[:3])


def test_writer_refuses_only_the_bad_records(chroma_server):
    client = chromadb.HttpClient(host=chroma_server.host, port=chroma_server.port, settings=_settings())
    writer = ChromaWriter.open(client, "writer-isolate", max_batch_size=3)
    vectors = np.arange(28, dtype=np.float32).reshape(7, 4)
    vectors[2, 1] = np.nan
    metadatas = [{"n": n} for n in range(7)]
    metadatas[5] = {"n": {"nested": "dicts are not metadata values"}}
    refused = writer.try_upsert([f"x{n}" for n in range(7)], vectors, metadatas=metadatas)
    assert sorted(refused) == ["x2", "x5"]
    assert refused["x2"] == "its embedding holds NaN or infinity"
    assert refused["x5"].startswith("Chroma refused it (")
    stored = client.get_collection("writer-isolate").get(include=["embeddings"])
    assert sorted(stored["ids"]) == ["x0", "x1", "x3", "x4", "x6"]
    with pytest.raises(ValueError, match="record 'x2': its embedding holds NaN"):
        writer.upsert([f"x{n}" for n in range(7)], vectors)


def test_writer_stores_the_embedding_function_for_any_client(chroma_server, tiny_clip_path):
    client = chromadb.HttpClient(host=chroma_server.host, port=chroma_server.port, settings=_settings())
    function = MultimodalEmbeddingFunction(tiny_clip_path, normalize=True)
    writer = ChromaWriter.open(client, "writer-config", function)
    writer.upsert(["t"], function.embedder.embed_documents(["a red bicycle"]))

    other = chromadb.HttpClient(host=chroma_server.host, port=chroma_server.port, settings=_settings())
    reopened = other.get_collection("writer-config").configuration["embedding_function"]
    assert isinstance(reopened, MultimodalEmbeddingFunction)
    assert reopened.get_config() == function.get_config()
    hit = other.get_collection("writer-config").query(query_texts=["a red bicycle"], n_results=1, include=["distances"])
    assert hit["ids"] == [["t"]]


# -- modalbridge index: SIGKILL and rerun; a server restarted under it -----------------------------------


def test_index_killed_midway_then_rerun_stores_every_good_file_exactly_once(tmp_path, tiny_clip_path, make_ingest_corpus, capsys):
    good, bad = make_ingest_corpus(tmp_path / "corpus", PHOTOS)
    db = tmp_path / "db"
    args = [str(tmp_path / "corpus"), "--db", str(db), "--model", tiny_clip_path, "--batch-size", "3"]

    first = IndexRun(*args)
    first.wait_for_progress(9)  # 3 batches written (one file of the first is the broken one)
    first.process.send_signal(signal.SIGKILL)
    first.finish()
    assert first.process.returncode == -signal.SIGKILL

    code = main(["index", *args, "-q"])  # run again (in this process: the tiny model is loaded already)
    out = capsys.readouterr().out
    counts = _summary_counts(out)
    assert code == 1  # bad files listed, everything else stored
    assert counts["unchanged"] >= 8 and counts["added"] >= 1  # killed midway: the rerun resumed
    assert counts["unchanged"] + counts["added"] + counts["updated"] == len(good)
    assert counts["failed"] == len(bad)
    for path in bad:
        assert f"  {path}: " in out

    collection = chromadb.PersistentClient(path=str(db), settings=_settings()).get_collection("modalbridge")
    assert_stored_exactly(collection, reference_vectors(tiny_clip_path, good))


def test_index_rides_out_a_chroma_server_restart(tmp_path, tiny_clip_path, restartable_chroma_server, make_ingest_corpus):
    good, bad = make_ingest_corpus(tmp_path / "corpus", PHOTOS)
    server = restartable_chroma_server.server
    run = IndexRun(
        str(tmp_path / "corpus"), "--host", server.host, "--port", str(server.port),
        "--model", tiny_clip_path, "--batch-size", "3",
    )
    run.wait_for_progress(9)
    restartable_chroma_server.kill()  # the server dies mid-run ...
    time.sleep(1.5)
    restartable_chroma_server.start()  # ... and comes back where it was
    code, out = run.finish()
    assert code == 1, run.stderr.decode()[-3000:]
    assert _summary_counts(out) == {"added": len(good), "updated": 0, "unchanged": 0, "failed": len(bad)}
    assert b"retrying in" in run.stderr  # the outage was seen and waited out, not fatal
    client = chromadb.HttpClient(host=server.host, port=server.port, settings=_settings())
    collection = client.get_collection("modalbridge")
    assert_stored_exactly(collection, reference_vectors(tiny_clip_path, good))

    # A server that stays down: the writer gives up within its deadline and says what it was writing.
    writer = ChromaWriter(collection, retry=RetryPolicy(initial_delay_s=0.05, deadline_s=1.0))
    assert writer.max_batch_size == client.get_max_batch_size()
    restartable_chroma_server.kill()
    with pytest.raises(ChromaUnavailableError, match=r"did not accept an upsert of 1 records into 'modalbridge' \(first id 'late'\)"):
        writer.upsert(["late"], np.zeros((1, 16), dtype=np.float32))
