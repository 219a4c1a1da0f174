"""The installed ``modalbridge`` console script, run in a subprocess like a person would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


from modalbridge.cli.indexing import file_id


def _script() -> str:
    beside = Path(sys.executable).with_name("modalbridge")
    found = str(beside) if beside.exists() else shutil.which("modalbridge")
    # A missing script is a broken install (pip install -e . creates it), never a reason to skip.
    assert found, "the modalbridge console script is not installed: pip install -e ."
    return found


def test_the_installed_script_is_the_one_pyproject_declares():
    """The reference is pyproject.toml itself: the installed entry point must run what it declares."""
    import tomllib
    from importlib.metadata import entry_points

    declared = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    target = declared["project"]["scripts"]["modalbridge"]
    (installed,) = [e for e in entry_points(group="console_scripts") if e.name == "modalbridge"]
    assert installed.value == target
    module, function = target.split(":")
    import importlib

    assert getattr(importlib.import_module(module), function) is importlib.import_module("modalbridge.cli").main
    assert f"from {module} import {function}" in Path(_script()).read_text()


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([_script(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_console_script_indexes_searches_and_writes_a_page(tmp_path, image_paths, audio_paths, tiny_clip_path, tiny_clap_path):
    media = tmp_path / "media"
    media.mkdir()
    for source in image_paths[6:9]:
        shutil.copy(source, media)
    shutil.copy(next(p for p in audio_paths if "robin" in p), media)
    (media / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")

    # Default --db: ./modalbridge-db in the working directory.
    done = _run("index", "media", "--model", tiny_clip_path, "--audio-model", tiny_clap_path, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "4 added, 0 updated, 0 unchanged, 1 failed" in done.stdout
    assert f"{file_id(media / 'corrupt.jpg')}: cannot decode image" in done.stdout
    assert "embedding into modalbridge" in done.stderr  # tqdm progress on stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "modalbridge-db").is_dir()

    photo = file_id(sorted(media.glob("0*.jpg"))[1])
    done = _run("search", "--image", photo, "-k", "3", "--html", "out/page.html", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["rank", "score", "modality", "path"]
    assert lines[1].split() == ["1", "1.0000", "image", photo]
    assert (tmp_path / "out" / "page.html").stat().st_size > 1000
    assert "results page: out/page.html" in done.stdout


def test_console_script_unloadable_model_exits_2(tmp_path):
    (tmp_path / "note.txt").write_text("hello")
    done = _run("index", "note.txt", "--model", "no-such-org/no-such-model", "-q", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("modalbridge: error: could not load model 'no-such-org/no-such-model'")
    assert "HF_HUB_OFFLINE=1 is set" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""
