"""Every ```python block in README.md runs, as written, with tiny offline models standing in for hub names.

Each snippet is taken from README.md (named by its section heading and its index there), every hub model
name in it is replaced by the folder of a tiny random-weight model of the same architecture (the table
below), and it is executed in a fresh namespace in a temporary working directory that holds the files the
snippets name (the real COCO photos and audio clips from ``../shared/data``, a generated video and PDF).
A hub name with no stand-in fails the test: a new snippet needs one. ```bash blocks are not executed.
"""

from __future__ import annotations

import io
import re
import shutil
import tokenize
import warnings
from pathlib import Path

import pytest
from chromadb.api.client import SharedSystemClient

from modalbridge import testing

README = Path(__file__).resolve().parent.parent / "README.md"

# hub name -> the fixture (conftest.py) giving a tiny offline model of the same architecture
STAND_INS = {
    "Qwen/Qwen3-VL-Embedding-2B": "tiny_qwen3vl_path",
    "Qwen/Qwen3-VL-Reranker-2B": "tiny_qwen3vl_reranker_path",
    "sentence-transformers/clip-ViT-B-32": "tiny_clip_path",
    "laion/clap-htsat-unfused": "tiny_clap_path",
    "vidore/colqwen2-v1.0-hf": "tiny_colqwen2_path",
    "sentence-transformers/all-MiniLM-L6-v2": "minilm_model_path",  # the real model, shipped on PyPI
    "cross-encoder/ms-marco-MiniLM-L6-v2": "tiny_text_cross_encoder_path",
}

# Snippets not run here, each with the reason and the test that covers what it shows.
NOT_RUN_HERE = {
    "Scale: one process, a Chroma server, or a Ray cluster #1": (
        "needs a Ray cluster and a Chroma server (chroma.internal); embed_dataset + ChromaWriter/ChromaDatasink "
        "run on a real local cluster and `chroma run` server in integration_tests/test_ray_ingest.py"
    ),
    "GPUs, many devices, vision-language models #2": (
        "a two-worker pool takes about a minute to start on this machine and the snippet only runs under "
        "__main__; the same calls (start once, reuse, release) are tests/test_pool.py"
    ),
}

# Files the snippets name, relative to the working directory, and where each comes from.
_IMAGES = ["photos/bike.jpg", "photos/bike2.jpg", "photos/cat.jpg", "photos/dog.jpg", "dog.jpg"]
_PNGS = ["report-p1.png", "report-p2.png"]
_VIDEOS = ["clips/ride.mp4", "walk.mp4"]
_AUDIO = ["bark.ogg"]
_PDFS = ["report.pdf"]

_FILE_SUFFIXES = (".jpg", ".png", ".mp4", ".ogg", ".pdf", ".wav", ".txt", ".md")


def _snippets() -> list[tuple[str, str]]:
    """(``"heading #n"``, code) for each ```python block, n counting the section's python blocks from 1."""
    found, heading, counts = [], "(top)", {}
    lines = README.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not line.startswith("#!"):
            heading = re.sub(r"\s*\(`pip install[^)]*\)$", "", line.lstrip("#").strip())  # drop "(`pip install ...`)"
        if line.strip() == "```python":
            end = lines.index("```", i + 1)
            counts[heading] = counts.get(heading, 0) + 1
            found.append((f"{heading} #{counts[heading]}", "\n".join(lines[i + 1 : end]) + "\n"))
            i = end
        i += 1
    return found


SNIPPETS = _snippets()


def _hub_names(code: str) -> set[str]:
    """String literals shaped like hub names (``owner/name``, not a file path)."""
    names = set()
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type != tokenize.STRING:
            continue
        value = token.string.strip("\"'")
        if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*", value) and not value.lower().endswith(
            _FILE_SUFFIXES
        ):
            names.add(value)
    return names


def test_the_readme_has_python_snippets_and_every_exclusion_names_one():
    names = [name for name, _ in SNIPPETS]
    assert len(names) >= 10, names
    assert set(NOT_RUN_HERE) <= set(names), set(NOT_RUN_HERE) - set(names)


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory, image_paths, audio_paths) -> Path:
    folder = tmp_path_factory.mktemp("readme_media")
    for index, name in enumerate(_IMAGES + _PNGS):
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".png"):
            from PIL import Image as PILImage

            PILImage.open(image_paths[index]).convert("RGB").save(target)
        else:
            shutil.copy(image_paths[index], target)
    for index, name in enumerate(_VIDEOS):
        testing.make_test_video(folder / name, color_shift=index)
    for name in _AUDIO:
        shutil.copy(audio_paths[0], folder / name)
    for name in _PDFS:
        testing.make_test_pdf(folder / name)  # three pages: `PdfPage("report.pdf", page=3)` exists
    return folder


@pytest.mark.parametrize("name,code", [pytest.param(n, c, id=n) for n, c in SNIPPETS if n not in NOT_RUN_HERE])
def test_readme_snippet_runs(name, code, media_dir, tmp_path, monkeypatch, request):
    unknown = _hub_names(code) - set(STAND_INS)
    assert not unknown, f"{name}: no offline stand-in for hub name(s) {sorted(unknown)}: add one to STAND_INS"
    for hub_name in _hub_names(code):
        code = code.replace(f'"{hub_name}"', repr(request.getfixturevalue(STAND_INS[hub_name])))
    shutil.copytree(media_dir, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme_snippet"}
    # Chroma keeps one system per client settings, and every snippet opens PersistentClient("db") relative to
    # its own working directory: forget the previous snippet's systems so each opens its own folder.
    SharedSystemClient.clear_system_cache()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # e.g. LlamaIndex's multimodal query engine
            exec(compile(code, f"README.md: {name}", "exec"), namespace)
    finally:
        SharedSystemClient.clear_system_cache()
