"""Fixtures shared by the integration tests (the tiny models and media come from the root conftest.py)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class ChromaServer:
    """A running ``chroma run`` server: connect with ``chromadb.HttpClient(host=..., port=...)``."""

    host: str
    port: int
    path: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _chroma_executable() -> str | None:
    beside_python = Path(sys.executable).with_name("chroma")
    return str(beside_python) if beside_python.exists() else shutil.which("chroma")


def start_chroma_server(folder: Path, port: int | None = None, host: str = "127.0.0.1") -> tuple[subprocess.Popen, ChromaServer]:
    """Start ``chroma run --path FOLDER/data --host HOST --port N`` (a free port unless ``port`` is given,
    e.g. to restart a server where it was) and wait until its heartbeat answers. Fails the test if it
    does not come up; the caller stops the process."""
    executable = _chroma_executable()
    if executable is None:  # a broken set-up, never a reason to skip the server tests
        pytest.fail("the `chroma` command (from the chromadb package) is not installed")
    log_path = folder / "server.log"
    for _attempt in range(3):  # another process may take the free port between bind and the server's start
        chosen = port or _free_port(host)
        heartbeat = None
        log = open(log_path, "ab")
        process = subprocess.Popen(
            [executable, "run", "--path", str(folder / "data"), "--host", host, "--port", str(chosen)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
        )
        log.close()  # the child holds its own copy
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://{host}:{chosen}/api/v2/heartbeat", timeout=1) as response:
                    heartbeat = response.read()
                break
            except OSError:
                time.sleep(0.1)
        if heartbeat is not None:
            return process, ChromaServer(host=host, port=chosen, path=folder / "data", log=log_path)
        process.terminate()
        process.wait(10)
    pytest.fail(f"the Chroma server did not start; its log:\n{log_path.read_text(errors='replace')[-3000:]}")


def stop_chroma_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory) -> ChromaServer:
    """A real Chroma server (``chroma run --path DIR --host 127.0.0.1 --port N``, shipped with the
    ``chromadb`` package) on a free port, up until its heartbeat answers, terminated at the end."""
    process, server = start_chroma_server(tmp_path_factory.mktemp("chroma_server"))
    try:
        yield server
    finally:
        stop_chroma_server(process)


class RestartableChromaServer:
    """A ``chroma run`` server a test can kill and start again on the same port and data folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.process: subprocess.Popen | None = None
        self.server: ChromaServer | None = None

    def start(self) -> ChromaServer:
        port = self.server.port if self.server is not None else None
        self.process, self.server = start_chroma_server(self.folder, port=port)
        return self.server

    def kill(self) -> None:
        """SIGKILL: the server dies mid-request, as in a crash or an OOM kill."""
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_chroma_server(self.process)


@pytest.fixture()
def restartable_chroma_server(tmp_path) -> RestartableChromaServer:
    """A real Chroma server (started) that the test may kill and restart; stopped at the end."""
    control = RestartableChromaServer(tmp_path / "chroma_server")
    control.folder.mkdir()
    control.start()
    try:
        yield control
    finally:
        control.stop()


def _make_ingest_corpus(folder: Path, photos: int) -> tuple[list[str], list[str]]:
    """``photos`` distinct 24x24 PNGs and two notes (good), a broken PNG, a non-UTF-8 and an empty note
    (bad), under ``folder``. Returns (good paths, bad paths), absolute and sorted."""
    import numpy as np
    from PIL import Image as PILImage

    rng = np.random.default_rng(7)
    (folder / "photos").mkdir(parents=True)
    good = []
    for n in range(photos):
        path = folder / "photos" / f"p{n:04d}.png"
        PILImage.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(path)
        good.append(str(path))
    for name, text in (("a.txt", "a red bicycle against a wall"), ("b.md", "# notes\n\ntwo cats on a sofa")):
        (folder / name).write_text(text, encoding="utf-8")
        good.append(str(folder / name))
    (folder / "photos" / "broken.png").write_bytes(b"\x89PNG but not really")
    (folder / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (folder / "empty.md").write_text("   \n", encoding="utf-8")
    bad = [str(folder / "photos" / "broken.png"), str(folder / "latin1.txt"), str(folder / "empty.md")]
    return sorted(good), sorted(bad)


@pytest.fixture()
def make_ingest_corpus():
    """``make(folder, photos) -> (good paths, bad paths)``: a folder to index, with files that fail."""
    return _make_ingest_corpus
