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


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory) -> ChromaServer:
    """A real Chroma server (``chroma run --path DIR --host 127.0.0.1 --port N``, shipped with the
    ``chromadb`` package) on a free port, up until its heartbeat answers, terminated at the end."""
    executable = _chroma_executable()
    if executable is None:  # a broken set-up, never a reason to skip the server tests
        pytest.fail("the `chroma` command (from the chromadb package) is not installed")
    host = "127.0.0.1"
    folder = tmp_path_factory.mktemp("chroma_server")
    log_path = folder / "server.log"
    heartbeat = None
    for _attempt in range(3):  # another process may take the free port between bind and the server's start
        port = _free_port(host)
        log = open(log_path, "wb")
        process = subprocess.Popen(
            [executable, "run", "--path", str(folder / "data"), "--host", host, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://{host}:{port}/api/v2/heartbeat", timeout=1) as response:
                    heartbeat = response.read()
                break
            except OSError:
                time.sleep(0.1)
        if heartbeat is not None:
            break
        process.terminate()
        process.wait(10)
        log.close()
    else:
        pytest.fail(f"the Chroma server did not start; its log:\n{log_path.read_text(errors='replace')[-3000:]}")
    try:
        yield ChromaServer(host=host, port=port, path=folder / "data", log=log_path)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()
