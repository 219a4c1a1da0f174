"""Tiny models trained from scratch for the offline ``modalbridge demo`` (no model hub needed).

The weights live in ``modalbridge/demo/models/`` (a few MB, shipped as package data) and load with plain
sentence-transformers, no ``trust_remote_code``:

* :func:`demo_embedder_path`: text <-> image ``SentenceTransformer`` (tiny CLIP);
* :func:`demo_audio_embedder_path`: text <-> audio ``SentenceTransformer`` (tiny CLAP);
* :func:`demo_reranker_path`: (text, image) ``CrossEncoder`` (tiny LLaVA + mean pooling + ``Dense``).

They only know the synthetic world of :mod:`modalbridge.demo.synthetic` (colored shapes; tones, chirps,
noise bursts and beeps). Training: :mod:`modalbridge.demo.train`; quality: :mod:`modalbridge.demo.evaluate`
and ``models/QUALITY.json``. All functions return ``str`` paths, ready for ``SentenceTransformer(path)``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["demo_models_dir", "demo_embedder_path", "demo_audio_embedder_path", "demo_reranker_path"]

_MODELS_DIR = Path(__file__).resolve().parent / "models"


def demo_models_dir() -> str:
    """Folder holding the demo models and ``QUALITY.json``."""
    return str(_MODELS_DIR)


def demo_embedder_path() -> str:
    """Text <-> image embedder (``SentenceTransformer``; modalities ``text``, ``image``)."""
    return str(_MODELS_DIR / "embedder")


def demo_audio_embedder_path() -> str:
    """Text <-> audio embedder (``SentenceTransformer``; modalities ``text``, ``audio``; 16 kHz, 1 s clips)."""
    return str(_MODELS_DIR / "audio-embedder")


def demo_reranker_path() -> str:
    """(text query, image document) reranker (``CrossEncoder``; ``predict`` returns sigmoid scores)."""
    return str(_MODELS_DIR / "reranker")
