"""Each framework example runs as a user would run it: a fresh process, no arguments, the demo models by
default, offline; what it prints is checked against direct sentence-transformers calls on the same
synthetic pictures (``write_images(folder, 12)``, seed 7): the retrieved images in cosine order, and the
reranked ones in ``CrossEncoder.predict`` order."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
QUERY = "a small red circle in the top left"  # every example's default query


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Captions of the 12 pictures in the order of the demo embedder's cosine similarity to QUERY, and a
    function scoring captions' pictures with the demo reranker: direct sentence-transformers calls."""
    from sentence_transformers import CrossEncoder, SentenceTransformer
    from transformers.image_utils import load_image

    from modalbridge.demo import demo_embedder_path, demo_reranker_path
    from modalbridge.demo.synthetic import write_images

    paths, captions = write_images(tmp_path_factory.mktemp("pictures"), 12)
    assert len(set(captions)) == len(captions)
    images = {caption: load_image(path) for path, caption in zip(paths, captions)}
    model = SentenceTransformer(str(demo_embedder_path()))
    similarity = model.similarity(model.encode_query([QUERY]), model.encode_document(list(images.values())))[0]
    order = [captions[i] for i in np.argsort(-similarity.numpy(), kind="stable")]
    cross_encoder = CrossEncoder(str(demo_reranker_path()))

    def rerank(candidates):
        scores = cross_encoder.predict([(QUERY, {"image": images[c]}) for c in candidates])
        return [candidates[i] for i in np.argsort(-scores, kind="stable")]

    return order, rerank


def _section(stdout: str, title: str) -> list[str]:
    """The captions listed under the first line starting with ``title`` (``"  1. <caption>  ..."``)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    captions = []
    for line in lines[start + 1 :]:
        match = re.match(r"^\s+\d+\. (.+?)(?:\s{2,}|$)", line)
        if not match:
            if captions:
                break
            continue
        captions.append(re.sub(r"^\[image\]\s+", "", match.group(1)).strip())
    return captions


@pytest.mark.parametrize(
    "script, extra",
    [
        ("chroma_retrieve_rerank.py", []),
        ("langchain_retrieve_rerank.py", []),
        ("langchain_retrieve_rerank.py", ["--store", "memory"]),
        ("llama_index_retrieve_rerank.py", []),
    ],
)
def test_example_runs_with_the_demo_models(script, extra, tmp_path, reference):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--num-images", "12", *extra],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    order, rerank = reference
    retrieved = _section(done.stdout, "retrieved (vector search")
    images = [c for c in retrieved if c in order]  # LlamaIndex lists its text notes too
    assert images and images == order[: len(images)], done.stdout
    if script != "llama_index_retrieve_rerank.py":  # its reranked list mixes the notes in
        reranked = _section(done.stdout, "reranked with")
        assert reranked == rerank(images)[: len(reranked)] and len(reranked) == 3, done.stdout
