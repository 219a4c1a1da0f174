"""``modalbridge index --multi-vector MODEL`` and search over the late-interaction collection it builds."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from modalbridge import Image
from modalbridge.cli import main
from modalbridge.cli.indexing import file_id
from modalbridge.multivector import MultiVectorEmbedder


def test_index_and_search_with_a_multi_vector_model(tmp_path, image_paths, audio_paths, tiny_colqwen2_path, tiny_clip_path, capsys):
    media = tmp_path / "media"
    media.mkdir()
    for source in image_paths[:3]:
        shutil.copy(source, media)
    shutil.copy(audio_paths[0], media)
    (media / "note.txt").write_text("a note about a red bicycle", encoding="utf-8")
    (media / "bad.jpg").write_bytes(b"not a jpeg")
    db = tmp_path / "db"

    code = main(["index", str(media), "--db", str(db), "--multi-vector", tiny_colqwen2_path, "--device", "cpu", "-q"])
    out = capsys.readouterr().out
    assert code == 1  # the corrupt picture failed alone
    assert "4 added, 0 updated, 0 unchanged, 1 failed" in out and "1 skipped" in out
    assert f"  {file_id(media / 'bad.jpg')}: cannot decode image" in out
    assert "takes text, image, not audio" in out

    # again: nothing changed, nothing is embedded again
    assert main(["index", str(media), "--db", str(db), "-q", "--device", "cpu"]) == 1
    assert "0 added, 0 updated, 4 unchanged, 1 failed" in capsys.readouterr().out

    assert main(["search", "a red bicycle", "--db", str(db), "-k", "3", "--candidates", "4", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    colqwen = MultiVectorEmbedder(tiny_colqwen2_path, device="cpu")
    files = sorted(file_id(p) for p in media.iterdir() if p.suffix in (".jpg", ".txt") and p.name != "bad.jpg")
    items = [Image(p) if p.endswith(".jpg") else open(p, encoding="utf-8").read() for p in files]
    scores = colqwen.score(colqwen.embed_query("a red bicycle"), colqwen.embed_documents(items))
    expected = [files[i] for i in np.argsort(-scores, kind="stable")[:3]]
    rows = [line.split() for line in out.splitlines()[1:4]]
    assert [row[-1] for row in rows] == expected  # every record was a candidate: exact MaxSim order
    assert [float(row[1]) for row in rows] == pytest.approx(sorted(scores, reverse=True)[:3], abs=1e-4)
    assert "ranked by exact late-interaction (MaxSim) scores among 4 first-stage candidates (muvera)" in out

    assert main(["search", "a red bicycle", "--db", str(db), "--model", tiny_clip_path]) == 2
    assert "is a late-interaction index, ranked by exact MaxSim with its own model: leave out --model" in capsys.readouterr().err
    assert main(["index", str(media), "--db", str(db), "--multi-vector", tiny_clip_path, "-q"]) == 2
    assert "holds token vectors of" in capsys.readouterr().err


def test_pdf_pages_in_a_multi_vector_index(tmp_path, tiny_colqwen2_path, capsys):
    """ColQwen2-style models are the visual document retrievers: a PDF is one record per page."""
    from modalbridge import PdfPage, testing

    folder = tmp_path / "docs"
    folder.mkdir()
    pdf = testing.make_test_pdf(folder / "doc.pdf", ((200, 100), (100, 150), (120, 120)))
    testing.make_encrypted_pdf(folder / "locked.pdf")
    db = tmp_path / "db"
    args = ["index", str(folder), "--db", str(db), "--multi-vector", tiny_colqwen2_path, "--device", "cpu", "-q"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "3 added, 0 updated, 0 unchanged, 1 failed" in out
    assert f"{file_id(folder / 'locked.pdf')}: cannot read the PDF: it is encrypted" in out
    assert main(["index", str(folder), "--db", str(db), "-q", "--device", "cpu"]) == 1
    assert "0 added, 0 updated, 3 unchanged, 1 failed" in capsys.readouterr().out

    assert main(["search", "a page", "--db", str(db), "-k", "3", "--candidates", "3", "--device", "cpu"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:4]]
    colqwen = MultiVectorEmbedder(tiny_colqwen2_path, device="cpu")
    pages = [PdfPage(file_id(pdf), page=n) for n in (1, 2, 3)]
    scores = colqwen.score(colqwen.embed_query("a page"), colqwen.embed_documents(pages))
    assert [row[-1] for row in rows] == [f"{file_id(pdf)}#page={i + 1}" for i in np.argsort(-scores, kind="stable")]
