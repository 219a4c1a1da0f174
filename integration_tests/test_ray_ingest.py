"""Ray Data on a real local cluster (``ray.init(num_cpus=2)``, one per module): the embedding stages
against direct core calls, bad rows in the error column, a killed actor's rows retried, and
``modalbridge index --ray`` into a real ``chroma run`` server against the single-process command.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import chromadb
import numpy as np
import pytest

import modalbridge
from modalbridge import Audio, Embedder, Image
from modalbridge.cli import main

import ray
import ray.data

from modalbridge.ray import EmbedColumn, embed_dataset



def _settings() -> chromadb.Settings:
    """Fresh settings per client: chromadb writes the server's address into the object it is given."""
    return chromadb.Settings(anonymized_telemetry=False)


@pytest.fixture(scope="module")
def ray_cluster():
    """A local two-CPU Ray cluster whose workers import this very modalbridge."""
    adapters = str(Path(modalbridge.__file__).resolve().parent.parent)
    pythonpath = os.pathsep.join(p for p in (adapters, os.environ.get("PYTHONPATH")) if p)
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.WARNING,
        runtime_env={"env_vars": {"PYTHONPATH": pythonpath, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}},
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield
    finally:
        ray.shutdown()


def _rows(folder: Path, photos: list[str], audio: str | None = None) -> tuple[list[dict], dict, dict]:
    """Rows of every kind (good and bad), the expected direct items of the good ones, and the expected
    error prefix of the bad ones."""
    (folder / "broken.png").write_bytes(b"not a png")
    good = {f"img{n}": ("image", path) for n, path in enumerate(photos)}
    good.update({"t0": ("text", "a red bicycle"), "t1": ("text", "photos/cat.jpg")})  # a str is text: never read
    bad = {
        "broken": ("image", str(folder / "broken.png"), f"{folder / 'broken.png'}: cannot decode image"),
        "missing": ("image", str(folder / "missing.png"), f"{folder / 'missing.png'}: no such file"),
        "smell": ("smell", "x", "x: unknown modality 'smell'"),
    }
    if audio is not None:
        bad["sound"] = ("audio", audio, "is audio, which this model does not support")
    rows = [{"id": key, "item": value, "modality": modality} for key, (modality, value) in good.items()]
    rows += [{"id": key, "item": value, "modality": modality} for key, (modality, value, _) in bad.items()]
    items = {key: value if modality == "text" else Image(value) for key, (modality, value) in good.items()}
    return rows, items, {key: reason for key, (_, _, reason) in bad.items()}


def _by_id(records: list[dict]) -> dict[str, dict]:
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids))  # every row exactly once
    return {r["id"]: r for r in records}


def test_embed_dataset_equals_the_core_and_names_bad_rows(ray_cluster, tmp_path, image_paths, audio_paths, tiny_clip_path):
    # Decoding on CPU tasks, then the model actor (decoding inside the actor: the killed-actor test).
    rows, items, reasons = _rows(tmp_path, image_paths[:6], audio=audio_paths[0])
    out = _by_id(embed_dataset(ray.data.from_items(rows), tiny_clip_path, decode="cpu", rows_per_batch=4).take_all())

    assert sorted(out) == sorted(r["id"] for r in rows)
    assert {key: out[key]["item"] for key in out} == {r["id"]: r["item"] for r in rows}  # inputs carried as given
    direct = dict(zip(items, Embedder(tiny_clip_path).embed_documents(list(items.values()))))
    for key, vector in direct.items():
        assert out[key]["error"] == ""
        np.testing.assert_allclose(out[key]["embedding"], vector, rtol=1e-5, atol=1e-6)
    for key, reason in reasons.items():
        assert reason in out[key]["error"], out[key]["error"]
        assert np.isnan(out[key]["embedding"]).all()


def test_audio_bytes_decoded_on_cpu_workers_equal_the_core(ray_cluster, audio_paths, tiny_clap_path):
    clips = sorted(audio_paths, key=os.path.getsize)[:2]  # the short ones
    # Encoded bytes, as ray.data.read_binary_files gives them (from object storage, say).
    rows = [{"id": str(n), "item": Path(path).read_bytes()} for n, path in enumerate(clips)]
    rows.append({"id": "noise", "item": b"not audio"})
    out = _by_id(embed_dataset(ray.data.from_items(rows), tiny_clap_path, modality="audio", decode="cpu").take_all())
    assert out["noise"]["error"].startswith("noise: 9 bytes: cannot decode audio")  # named by its id
    direct = Embedder(tiny_clap_path).embed_documents([Audio(path) for path in clips])
    for n, vector in enumerate(direct):
        assert out[str(n)]["error"] == ""
        np.testing.assert_allclose(out[str(n)]["embedding"], vector, rtol=1e-5, atol=1e-6)


class KillOnceEmbedColumn(EmbedColumn):
    """EmbedColumn whose actor SIGKILLs itself the first time it sees ``victim`` (``marker`` remembers)."""

    def __init__(self, *, victim: str, marker: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.victim, self.marker = victim, marker

    def __call__(self, batch):
        if self.victim in list(batch["id"]) and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(batch)


def test_a_killed_actors_rows_are_retried(ray_cluster, tmp_path, image_paths, tiny_clip_path):
    # Workers cannot import this test module: ship the subclass by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    marker = tmp_path / "killed"
    rows = [{"id": f"r{n}", "item": image_paths[n % len(image_paths)]} for n in range(60)]
    rows.append({"id": "gone", "item": str(tmp_path / "gone.jpg")})  # decoded in the actor: fails alone
    ds = ray.data.from_items(rows).map_batches(
        KillOnceEmbedColumn,
        fn_constructor_kwargs={"model_name_or_path": tiny_clip_path, "modality": "image", "victim": "r25", "marker": str(marker)},
        batch_size=10,
        compute=ray.data.ActorPoolStrategy(size=1),
    )
    out = _by_id(ds.take_all())
    assert marker.exists()  # the actor was killed mid-job ...
    assert sorted(out) == sorted(r["id"] for r in rows)  # ... and every row came back once
    direct = dict(zip(image_paths, Embedder(tiny_clip_path).embed_documents([Image(p) for p in image_paths])))
    assert out.pop("gone")["error"] == f"{tmp_path / 'gone.jpg'}: no such file"
    for row in rows[:-1]:
        assert out[row["id"]]["error"] == ""
        np.testing.assert_allclose(out[row["id"]]["embedding"], direct[row["item"]], rtol=1e-5, atol=1e-6)


def test_index_ray_builds_the_same_collection_as_one_process(ray_cluster, chroma_server, tmp_path, make_ingest_corpus, tiny_clip_path, capsys):
    good, bad = make_ingest_corpus(tmp_path / "corpus", 300)
    common = [
        "index", str(tmp_path / "corpus"), "--host", chroma_server.host, "--port", str(chroma_server.port),
        "--model", tiny_clip_path, "--batch-size", "16", "-q",
    ]
    assert main([*common, "--collection", "one-process"]) == 1  # the bad files are listed, the rest stored
    single_out = capsys.readouterr().out
    assert main([*common, "--collection", "on-ray", "--ray"]) == 1
    ray_out = capsys.readouterr().out
    assert ray.is_initialized()  # the command used the cluster it found and left it running

    def failures(out: str) -> list[str]:
        return sorted(line for line in out.splitlines() if line.startswith("  "))

    assert f"{len(good)} added, 0 updated, 0 unchanged, {len(bad)} failed" in ray_out
    assert failures(ray_out) == failures(single_out) and len(failures(ray_out)) == len(bad)

    client = chromadb.HttpClient(host=chroma_server.host, port=chroma_server.port, settings=_settings())
    single = client.get_collection("one-process")
    on_ray = client.get_collection("on-ray")
    include = ["embeddings", "metadatas", "documents", "uris"]
    a, b = single.get(include=include), on_ray.get(include=include)
    assert sorted(a["ids"]) == sorted(b["ids"]) == sorted(good)
    order_a, order_b = np.argsort(a["ids"]), np.argsort(b["ids"])
    np.testing.assert_allclose(np.asarray(b["embeddings"])[order_b], np.asarray(a["embeddings"])[order_a], rtol=1e-5, atol=1e-6)
    for key in ("metadatas", "documents", "uris"):
        assert [b[key][i] for i in order_b] == [a[key][i] for i in order_a]
    assert on_ray.configuration["embedding_function"].get_config() == single.configuration["embedding_function"].get_config()


def test_chroma_datasink_writes_from_the_workers(ray_cluster, chroma_server, tmp_path, image_paths, tiny_clip_path):
    from modalbridge.chroma import MultimodalEmbeddingFunction
    from modalbridge.ray import ChromaDatasink

    rows, items, reasons = _rows(tmp_path, image_paths[:6])
    function = MultimodalEmbeddingFunction(tiny_clip_path)
    sink = ChromaDatasink(
        chroma_server.host, chroma_server.port, "ray-sink", metadata_columns=["modality"], max_batch_size=3,
        embedding_function=function,  # the collection is created with it stored
    )
    embed_dataset(ray.data.from_items(rows), tiny_clip_path, rows_per_batch=4).write_datasink(sink)

    assert sink.written == len(items)
    assert sorted(sink.failed) == sorted(reasons)  # bad rows are reported, not written
    for key, reason in reasons.items():
        assert reason in sink.failed[key]
    client = chromadb.HttpClient(host=chroma_server.host, port=chroma_server.port, settings=_settings())
    collection = client.get_collection("ray-sink")
    got = collection.get(include=["embeddings", "metadatas"])
    assert sorted(got["ids"]) == sorted(items)
    direct = dict(zip(items, Embedder(tiny_clip_path).embed_documents(list(items.values()))))
    for key, vector, meta in zip(got["ids"], got["embeddings"], got["metadatas"]):
        np.testing.assert_allclose(vector, direct[key], rtol=1e-5, atol=1e-6)
        assert meta == {"modality": "text" if key.startswith("t") else "image"}
    assert collection.configuration["embedding_function"].get_config() == function.get_config()
