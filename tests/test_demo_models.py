"""The committed demo models load offline with plain sentence-transformers and meet their quality targets.

Evaluation only (no training): about 10-20 s on 2 CPU cores. The metric definitions are in
``modalbridge.demo.evaluate``; retrain with ``python -m modalbridge.demo.train``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from modalbridge.demo import (  # noqa: E402
    demo_audio_embedder_path,
    demo_embedder_path,
    demo_models_dir,
    demo_reranker_path,
)
from modalbridge.demo.evaluate import evaluate, page_recall  # noqa: E402


@pytest.fixture(scope="module")
def metrics() -> dict:
    for path in (demo_embedder_path(), demo_audio_embedder_path(), demo_reranker_path()):
        assert (Path(path) / "modules.json").is_file(), f"missing demo model folder {path}"
    return evaluate()


def test_text_to_image_recall(metrics):
    assert metrics["text_to_image_recall@1"] >= 0.9, metrics


def test_text_to_audio_recall(metrics):
    assert metrics["text_to_audio_recall@1"] >= 0.8, metrics


def test_rerank_not_worse_than_embedding(metrics):
    assert metrics["rerank_top1"] >= metrics["embedding_top1"], metrics


def test_quality_json_matches(metrics):
    """QUALITY.json records the metrics that the committed weights give."""
    quality = json.loads((Path(demo_models_dir()) / "QUALITY.json").read_text())
    for key in ("text_to_image_recall@1", "text_to_audio_recall@1", "embedding_top1", "rerank_top1"):
        assert quality["metrics"][key] == pytest.approx(metrics[key], abs=0.02), key


def test_models_are_small():
    total = sum(f.stat().st_size for f in Path(demo_models_dir()).rglob("*") if f.is_file())
    assert total < 5 * 1024 * 1024, total


def test_page_recall_over_held_out_slide_decks():
    """Visual document retrieval: a caption finds its one page among 60 pages of 6 real PDFs."""
    result = page_recall()
    assert result["pages"] >= 50
    assert result["page_recall@1"] >= 0.9, result
