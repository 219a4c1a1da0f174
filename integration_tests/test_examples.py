"""Each framework example runs as a user would run it: a fresh process, no arguments, the demo models by
default, offline."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize(
    "script, extra",
    [
        ("chroma_retrieve_rerank.py", []),
        ("langchain_retrieve_rerank.py", []),
        ("langchain_retrieve_rerank.py", ["--store", "memory"]),
        ("llama_index_retrieve_rerank.py", []),
    ],
)
def test_example_runs_with_the_demo_models(script, extra, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--num-images", "12", *extra],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "rerank" in done.stdout.lower(), done.stdout
