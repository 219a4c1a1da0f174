"""``modalbridge demo``: the flow with tiny models (fast, through ``main``), and the real offline demo
with the trained demo models through the console script."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import chromadb
import pytest

from modalbridge.cli import main


def test_demo_flow_with_tiny_models(tmp_path, tiny_clip_path, tiny_clap_path, tiny_qwen3vl_reranker_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--model", tiny_clip_path, "--audio-model", tiny_clap_path,
            "--reranker", tiny_qwen3vl_reranker_path, "-q"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert len(list((out / "media" / "images").glob("*.png"))) == 24
    assert len(list((out / "media" / "sounds").glob("*.wav"))) == 12
    assert len(list((out / "media" / "videos").glob("*.mp4"))) == 4
    assert len(list((out / "media" / "documents").glob("*.pdf"))) == 2  # 2 decks of 5 slides: 10 page records
    assert re.search(r"^index \([\d.]+ s\): 50 added, 0 updated, 0 unchanged, 0 failed$", printed, re.M)
    for title in ("text → image", "image → image", "text → audio", "text → video", "text → PDF page", "retrieve and rerank"):
        assert re.search(rf"^\[\d\] {title}: ", printed, re.M), title
    assert len(re.findall(r"^top hit is the expected item \(media/.+\): (yes|NO) ", printed, re.M)) == 6
    assert re.search(r"^done in [\d.]+ s: \d/6 queries found the expected item first$", printed, re.M)
    page = (out / "results.html").read_text(encoding="utf-8")
    assert page.count("<section") == 6 and page.count('class="status ') == 6

    client = chromadb.PersistentClient(path=str(out / "db"), settings=chromadb.Settings(anonymized_telemetry=False))
    assert client.get_collection("demo").count() == 38 and client.get_collection("demo-audio").count() == 12

    # Running it again starts from a fresh index (no duplicates) and gives the same tables.
    assert main(args) == 0
    again = capsys.readouterr().out
    assert re.search(r"^index \([\d.]+ s\): 50 added", again, re.M)
    strip = lambda text: re.sub(r"\([\d.]+ s\)|done in [\d.]+ s", "", text)  # noqa: E731
    assert strip(again) == strip(printed)


@pytest.mark.slow
def test_real_demo_through_the_console_script(tmp_path):
    script = Path(sys.executable).with_name("modalbridge")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    started = time.perf_counter()
    done = subprocess.run([str(script), "demo", "--out", str(tmp_path / "demo")], env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    found = re.search(r"(\d)/6 queries found the expected item first", done.stdout)
    assert found, done.stdout
    # The trained models find what each query was made from (all six on the reference run).
    assert int(found.group(1)) >= 5, done.stdout
    assert re.search(r"^top hit is the expected item \(media/documents/deck-2\.pdf#page=3\): yes ", done.stdout, re.M), done.stdout
    assert (tmp_path / "demo" / "results.html").exists()
    assert seconds < 120, f"the demo took {seconds:.0f} s"
