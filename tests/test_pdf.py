"""PDF pages through the core: real PDFs made here (Pillow + PDFium), rendered pages equal to rendering
with pypdfium2 by hand and calling sentence-transformers directly, and errors that name file and page."""

from __future__ import annotations

import math

import numpy as np
import pypdfium2
import pytest
from sentence_transformers import CrossEncoder, SentenceTransformer

from modalbridge import Embedder, Image, MediaError, PdfPage, Reranker, testing
from modalbridge.items import parse_page_uri
from modalbridge.media import page_count, pdf_pages, tag_uri

SIZES = ((200, 100), (100, 150), (120, 120), (90, 160))  # points; page 2 is turned 90 degrees


@pytest.fixture(scope="module")
def pdf_path(tmp_path_factory) -> str:
    return testing.make_test_pdf(tmp_path_factory.mktemp("pdf") / "mixed.pdf", SIZES, rotations={2: 90})


def render_by_hand(path: str, number: int, scale_of) -> object:
    """The page rendered with pypdfium2 directly, at ``scale_of(width_pt, height_pt)``."""
    document = pypdfium2.PdfDocument(path)
    page = document[number - 1]
    width, height = page.get_size()
    image = page.render(scale=scale_of(width, height)).to_pil().convert("RGB")
    document.close()
    return image


def test_pdf_pages_are_lazy_tags(pdf_path):
    pages = pdf_pages(pdf_path)
    assert len(pages) == len(SIZES)
    assert [p.page for p in pages] == [1, 2, 3, 4]
    assert all(isinstance(p, PdfPage) and p.source == pdf_path for p in pages)
    assert pages[1].uri == f"{pdf_path}#page=2"
    assert [p.page for p in pdf_pages(pdf_path, pages=[3, 1])] == [3, 1]
    assert parse_page_uri(f"{pdf_path}#page=12") == (pdf_path, 12)
    assert parse_page_uri("notes.txt#page=1") is None
    assert tag_uri(f"{pdf_path}#page=3") == PdfPage(pdf_path, page=3)


def test_clip_pages_equal_direct_calls(tiny_clip_path, pdf_path):
    """CLIP-like processor: each page rendered with its shorter side at the processor's resize size."""
    embedder = Embedder(tiny_clip_path, device="cpu")
    shortest = embedder.model[0].processor.image_processor.size["shortest_edge"]
    images = [render_by_hand(pdf_path, n, lambda w, h: shortest / min(w, h)) for n in range(1, 5)]
    assert min(images[0].size) == shortest
    direct = SentenceTransformer(tiny_clip_path, device="cpu").encode_document(images)
    got = embedder.embed_documents(pdf_pages(pdf_path))
    np.testing.assert_allclose(got, direct, atol=1e-6)
    # the address and the tag are the same page; a plain str of that address stays text
    mixed = embedder.embed_documents([Image(f"{pdf_path}#page=3"), f"{pdf_path}#page=3"])
    np.testing.assert_allclose(mixed[0], direct[2], atol=1e-6)
    text = SentenceTransformer(tiny_clip_path, device="cpu").encode_document([{"text": f"{pdf_path}#page=3"}])
    np.testing.assert_allclose(mixed[1], text[0], atol=1e-6)


def test_qwen_pages_equal_direct_calls(tiny_qwen3vl_path, pdf_path):
    """Qwen-VL-like processor: each page rendered to about max_pixels pixels."""
    embedder = Embedder(tiny_qwen3vl_path, device="cpu")
    max_pixels = embedder.model[0].processor.image_processor.size["longest_edge"]
    images = [render_by_hand(pdf_path, n, lambda w, h: math.sqrt(max_pixels / (w * h))) for n in (1, 2)]
    assert abs(images[0].width * images[0].height - max_pixels) < 0.05 * max_pixels
    direct = SentenceTransformer(tiny_qwen3vl_path, device="cpu").encode_document(images)
    got = embedder.embed_documents([PdfPage(pdf_path, page=1), PdfPage(pdf_path, page=2)])
    np.testing.assert_allclose(got, direct, atol=1e-5)


def test_pages_take_the_exact_path_beside_device_decoded_images(tiny_clip_path, pdf_path, image_paths):
    """With image_decode="gpu" (run on CPU tensors here), photos go to the device path and PDF pages,
    rendered on the CPU anyway, to the exact path: each row still in input order."""
    items = [PdfPage(pdf_path, page=2), Image(image_paths[0]), PdfPage(pdf_path, page=1)]
    mixed = Embedder(tiny_clip_path, device="cpu", image_decode="gpu").embed_documents(items)
    exact = Embedder(tiny_clip_path, device="cpu").embed_documents([items[0], items[2]])
    np.testing.assert_allclose(mixed[[0, 2]], exact, atol=1e-6)
    alone = Embedder(tiny_clip_path, device="cpu", image_decode="gpu").embed_documents([items[1]])
    np.testing.assert_allclose(mixed[1], alone[0], atol=1e-6)


def test_late_interaction_pages_equal_direct_calls(tiny_colqwen2_path, pdf_path):
    """ColQwen2-style models (the visual document retrievers): token matrices of rendered pages."""
    from sentence_transformers import MultiVectorEncoder

    from modalbridge.multivector import MultiVectorEmbedder

    colqwen = MultiVectorEmbedder(tiny_colqwen2_path, device="cpu")
    max_pixels = colqwen.model[0].processor.image_processor.size["longest_edge"]
    images = [render_by_hand(pdf_path, n, lambda w, h: math.sqrt(max_pixels / (w * h))) for n in (1, 2)]
    direct = MultiVectorEncoder(tiny_colqwen2_path, device="cpu").encode_document(images)
    got = colqwen.embed_documents([PdfPage(pdf_path, page=1), PdfPage(pdf_path, page=2)])
    for matrix, expected in zip(got, direct):
        np.testing.assert_allclose(matrix, np.asarray(expected), atol=1e-5)


def test_pdf_dpi_overrides_the_resolution(tiny_clip_path, pdf_path):
    embedder = Embedder(tiny_clip_path, device="cpu", pdf_dpi=36)
    image = render_by_hand(pdf_path, 1, lambda w, h: 0.5)
    assert image.size == (100, 50)
    direct = SentenceTransformer(tiny_clip_path, device="cpu").encode_document([image])
    np.testing.assert_allclose(embedder.embed_documents([PdfPage(pdf_path, page=1)]), direct, atol=1e-6)
    with pytest.raises(ValueError, match="pdf_dpi must be None or a number from 10 to 1200, got 0"):
        Embedder(tiny_clip_path, pdf_dpi=0)


def test_rotated_page_is_upright(pdf_path):
    """Page 2 is 100x150 pt turned 90 degrees clockwise: it renders 150 wide, its top-left marker at the top right."""
    from modalbridge.media import PageResolution, render_page

    image = render_page(PdfPage(pdf_path, page=2), PageResolution(dpi=72))
    assert image.size == (150, 100)
    dark = np.asarray(image).sum(axis=2) < 100
    assert dark[:10, -10:].all() and not dark[:10, :10].any()


def test_reranker_scores_pages_like_cross_encoder(tiny_qwen3vl_reranker_path, pdf_path):
    reranker = Reranker(tiny_qwen3vl_reranker_path, device="cpu")
    max_pixels = reranker.model[0].processor.image_processor.size["longest_edge"]
    images = [render_by_hand(pdf_path, n, lambda w, h: math.sqrt(max_pixels / (w * h))) for n in (1, 3)]
    direct = CrossEncoder(tiny_qwen3vl_reranker_path, device="cpu").predict(
        [("a red page", {"image": image}) for image in images]
    )
    got = reranker.score("a red page", [PdfPage(pdf_path, page=1), Image(f"{pdf_path}#page=3")])
    np.testing.assert_allclose(got, direct, atol=1e-5)


def test_errors_name_the_file_and_page(tiny_clip_path, pdf_path, tmp_path):
    encrypted = testing.make_encrypted_pdf(tmp_path / "locked.pdf")
    assert len(pypdfium2.PdfDocument(encrypted, password="secret")) == 1  # really encrypted, not broken
    empty = testing.make_empty_pdf(tmp_path / "empty.pdf")
    corrupt = tmp_path / "corrupt.pdf"
    corrupt.write_bytes(b"%PDF-1.4\nthis is not a PDF body\n")
    embedder = Embedder(tiny_clip_path, device="cpu")

    vectors, errors = embedder.try_embed_documents(
        [
            PdfPage(encrypted, page=1),
            PdfPage(str(corrupt), page=1),
            PdfPage(empty, page=1),
            PdfPage(pdf_path, page=9),
            Image(str(tmp_path / "missing.pdf#page=1")),
            Image(pdf_path),
            PdfPage(pdf_path, page=4),
        ]
    )
    assert list(vectors) == [6]
    reasons = {index: str(error) for index, error in errors.items()}
    assert reasons[0] == f"item 0: {encrypted}#page=1: cannot read the PDF: it is encrypted (password-protected); decrypt it first"
    assert reasons[1] == f"item 1: {corrupt}#page=1: cannot read the PDF: it is not a PDF, or it is corrupt"
    assert reasons[2] == f"item 2: {empty}#page=1: cannot read the PDF: it has no pages, or its page tree cannot be read"
    assert reasons[3] == f"item 3: {pdf_path}#page=9: out of range: the PDF has 4 pages"
    assert reasons[4] == f"item 4: {tmp_path / 'missing.pdf'}#page=1: no such file"
    assert reasons[5].startswith(f"item 5: {pdf_path}: a PDF is a document of pages; address one page as '{pdf_path}#page=N'")

    with pytest.raises(MediaError, match=r"locked\.pdf: cannot read the PDF: it is encrypted"):
        pdf_pages(encrypted)
    with pytest.raises(MediaError, match=r"empty\.pdf: cannot read the PDF: it has no pages"):
        page_count(empty)
    with pytest.raises(MediaError, match=r"mixed\.pdf#page=5: out of range: the PDF has 4 pages"):
        pdf_pages(pdf_path, pages=[1, 5])
    with pytest.raises(ValueError, match="page must be a whole number from 1, got 0"):
        PdfPage(pdf_path, page=0)


MEMORY_SCRIPT = """
import os, sys, threading
from modalbridge import Embedder
from modalbridge.media import pdf_pages

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

path, warm, model = sys.argv[1], sys.argv[2], sys.argv[3]
embedder = Embedder(model, device="cpu", pdf_dpi=720, batch_size=2)
embedder.embed_documents(pdf_pages(warm))  # a 2-page file: the model is loaded and every code path has run once
baseline, highest, running = rss_mb(), [0.0], [True]

def sample():  # the resident set now and then, not the process's all-time peak (loading may have set that)
    while running[0]:
        highest[0] = max(highest[0], rss_mb())
        threading.Event().wait(0.005)

sampler = threading.Thread(target=sample)
sampler.start()
vectors = embedder.embed_documents(pdf_pages(path))  # the streaming path every adapter goes through
running[0] = False
sampler.join()
print(len(vectors), int(max(highest[0], rss_mb()) - baseline))
"""


def test_a_long_pdf_is_embedded_in_flat_memory(tiny_clip_path, tmp_path):
    """96 pages rendered at 1000x1000 (3 MB each, 288 MB together) through the streaming path in batches
    of 2: the peak grows by a few batches' worth only (the renderer's bitmaps, the decoded pages ahead of
    the model and the processor's float copies), not by the document's length."""
    import subprocess
    import sys

    path = testing.make_test_pdf(tmp_path / "long.pdf", [(100, 100)] * 96, rotations={})
    warm = testing.make_test_pdf(tmp_path / "warm.pdf", [(100, 100)] * 2, rotations={})
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, path, warm, tiny_clip_path], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pages, growth_mb = map(int, done.stdout.split()[-2:])
    assert pages == 96
    print(f"resident set growth while embedding 96 pages of 3 MB: {growth_mb} MB")
    assert growth_mb < 144, f"the resident set grew by {growth_mb} MB while embedding 96 pages (288 MB of pages)"
