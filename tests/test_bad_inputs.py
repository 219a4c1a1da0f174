"""Runs every row of the bad-input matrix (``tests/bad_inputs.py``) through its real entry point and
checks the outcome; checks that ``docs/bad-inputs.md`` is that table rendered."""

from __future__ import annotations

import os
import shutil
from functools import cached_property
from pathlib import Path

import chromadb
import numpy as np
import pytest
import soundfile as sf
import torch

from bad_inputs import CASES, INDEX, render_markdown
from modalbridge import Embedder, Reranker, testing
from modalbridge.cli.indexing import MediaIndex, file_id, open_client

ROOT = Path(__file__).resolve().parent.parent


class Context:
    """The entry points and files the rows use, built on first use and shared by every row."""

    def __init__(self, paths: dict[str, str], folder: Path) -> None:
        self.names = paths
        self.folder = folder

    @cached_property
    def clip(self):
        return Embedder(self.names["clip"])

    @cached_property
    def clap(self):
        return Embedder(self.names["clap"])

    @cached_property
    def qwen(self):
        return Embedder(self.names["qwen"])

    @cached_property
    def reranker(self):
        return Reranker(self.names["qwen_reranker"])

    @cached_property
    def poisoned_clip(self):
        embedder = Embedder(testing.build_tiny_clip(self.folder / "poisoned_clip"), device="cpu")
        with torch.no_grad():
            for name, parameter in embedder.model.named_parameters():
                if "visual_projection" in name:
                    parameter.fill_(float("nan"))
        return embedder

    @cached_property
    def poisoned_reranker(self):
        reranker = Reranker(testing.build_tiny_text_cross_encoder(self.folder / "poisoned_ce"), device="cpu")
        with torch.no_grad():
            for name, parameter in reranker.model.named_parameters():
                if "classifier" in name:
                    parameter.fill_(float("nan"))
        return reranker

    @cached_property
    def chroma_function(self):
        from modalbridge.chroma import MultimodalEmbeddingFunction

        return MultimodalEmbeddingFunction(self.names["clip"])

    @cached_property
    def loader(self):
        from modalbridge.chroma import MultimodalDataLoader

        return MultimodalDataLoader()

    @cached_property
    def langchain_embeddings(self):
        from modalbridge.langchain import MultimodalEmbeddings

        return MultimodalEmbeddings(model_name=self.names["clip"])

    @cached_property
    def langchain_rerank(self):
        from modalbridge.langchain import MultimodalRerank

        return MultimodalRerank(model_name=self.names["qwen_reranker"])

    @cached_property
    def llama_embedding(self):
        from modalbridge.llama_index import MultimodalEmbedding

        return MultimodalEmbedding(self.names["clip"])

    @cached_property
    def llama_rerank(self):
        from modalbridge.llama_index import MultimodalRerank

        return MultimodalRerank(self.names["qwen_reranker"])

    @cached_property
    def index_run(self):
        """``modalbridge index`` (its Python entry point) over a folder of good and bad files: the report."""
        folder = Path(self.names["index"])
        index = MediaIndex(
            open_client(self.folder / "db"), model=self.names["clip"], audio_model=self.names["clap"],
            use_demo_models=False,
        )
        return index.index([folder, folder / "no-such-folder"])

    @property
    def index_report(self):
        return self.index_run.summary()


@pytest.fixture(scope="module")
def context(tmp_path_factory, tiny_clip_path, tiny_clap_path, tiny_qwen3vl_path, tiny_qwen3vl_reranker_path, image_paths):
    root = tmp_path_factory.mktemp("bad_inputs")
    tone = testing.make_test_tone(0.25)
    nan_tone = tone.copy()
    nan_tone[100] = np.nan
    sf.write(root / "nan.wav", nan_tone, 16_000, subtype="FLOAT")
    sf.write(root / "good.wav", tone, 16_000, subtype="FLOAT")
    one_frame = testing.make_test_video(root / "one-frame.mp4", num_frames=1)
    (root / "a-folder").mkdir()

    index = root / "index"
    (index / "sounds").mkdir(parents=True)
    shutil.copy(image_paths[0], index / "photo.jpg")
    shutil.copy(root / "good.wav", index / "sounds" / "good.wav")
    shutil.copy(root / "nan.wav", index / "sounds" / "nan.wav")
    (index / "note.txt").write_text("a good note")
    (index / "bad.jpg").write_bytes(b"not a jpeg at all")
    (index / "empty.png").write_bytes(b"")
    (index / "empty.txt").write_text("  \n")
    (index / "latin1.txt").write_bytes("café".encode("latin-1"))
    shutil.copy(one_frame, index / "still.mp4")
    os.symlink(index / "nowhere.jpg", index / "dangling.jpg")
    os.symlink(index / "photo.jpg", index / "alias.jpg")  # the same file: stored once

    paths = {
        "clip": tiny_clip_path, "clap": tiny_clap_path, "qwen": tiny_qwen3vl_path,
        "qwen_reranker": tiny_qwen3vl_reranker_path,
        "photo": image_paths[0], "missing": str(root / "missing.jpg"), "folder": str(root / "a-folder"),
        "wav": str(root / "good.wav"), "nan_wav": str(root / "nan.wav"), "one_frame": str(one_frame),
        "index": file_id(index),
    }
    return Context(paths, root)


def test_the_matrix_is_big_and_covers_every_entry_point():
    entries = {c.entry.split(" (")[0].split("(")[0] for c in CASES}
    assert len(CASES) >= 40
    for needed in ("Embedder.embed_documents", "Reranker.score", "Reranker.rank", "MultimodalEmbeddingFunction.__call__",
                   "MultimodalDataLoader", "rerank_query_result", "MultimodalEmbeddings.embed_documents",
                   "MultimodalRerank.compress_documents", "MultimodalEmbedding.get_image_embedding_batch",
                   "MultimodalRerank.postprocess_nodes", INDEX):
        assert any(e.startswith(needed) for e in entries), needed


@pytest.mark.parametrize("row", CASES, ids=[f"{i + 1}-{c.kind}" for i, c in enumerate(CASES)])
def test_bad_input(row, context):
    expected = row.message.format(**context.names)
    if row.error == "exit 1":
        report = row.run(context)
        assert f"  {expected}" in report, report
        return
    with pytest.raises(Exception) as error:
        row.run(context)
    # The named type or a subclass of it (MediaError and SettingsError are ValueErrors).
    assert row.error in [kind.__name__ for kind in type(error.value).__mro__], repr(error.value)
    assert expected in str(error.value), str(error.value)


def test_index_stores_every_good_file_once(context):
    report = context.index_run
    assert not report.ok
    photo, note, good_wav = (file_id(Path(context.names["index"]) / p) for p in ("photo.jpg", "note.txt", "sounds/good.wav"))
    assert sorted(report.added) == sorted([photo, note, good_wav])
    client = chromadb.PersistentClient(path=str(context.folder / "db"))
    assert sorted(client.get_collection("modalbridge").get()["ids"]) == sorted([photo, note])
    assert client.get_collection("modalbridge-audio").get()["ids"] == [good_wav]


def test_docs_table_is_current():
    assert (ROOT / "docs" / "bad-inputs.md").read_text(encoding="utf-8") == render_markdown()
