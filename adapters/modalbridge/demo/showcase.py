"""``modalbridge demo``: the whole library in one offline command.

1. Generates a small media folder with the demo's synthetic generators: pictures of coloured shapes
   (PNG), sounds (WAV) and short videos of moving shapes (MP4), named after their captions, and slide
   decks (PDF: each page a picture and its caption as a line of text).
2. Indexes it into an embedded Chroma under ``DIR/db`` with :class:`~modalbridge.cli.indexing.MediaIndex`
   (the text+image demo model for pictures and videos — videos as the mean of sampled frames — and
   the text+audio demo model for sounds; each PDF page is a record of its own, embedded as an image).
3. Runs text->image, image->image, text->audio, text->video, text->PDF page and retrieve-and-rerank
   queries, prints
   each result table and whether the top hit is the item the query was made from.
4. Writes ``DIR/results.html`` (:mod:`modalbridge.cli.report`).

Every step is deterministic (seeded generators), so the output is the same on every run::

    from modalbridge.demo.showcase import run_demo

    outcome = run_demo("modalbridge-output")
    assert outcome.page.exists()
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from modalbridge.demo import synthetic
from modalbridge.items import Image, page_uri

__all__ = ["DemoQuery", "DemoOutcome", "make_media", "run_demo"]

COLLECTION = "demo"
NUM_IMAGES = 24
NUM_SOUNDS = 12
GALLERY_SEED = 2024
QUERY_SEED = 4242  # held-out renderings for the image->image query
VIDEO_SPECS = (
    synthetic.VideoSpec("circle", "red", "left to right"),
    synthetic.VideoSpec("square", "blue", "top to bottom"),
    synthetic.VideoSpec("triangle", "green", "right to left"),
    synthetic.VideoSpec("star", "yellow", "bottom to top"),
)
# Which gallery items the queries are made from (indices into the generated lists).
TEXT_IMAGE_INDEX = 3
IMAGE_IMAGE_INDEX = 7
TEXT_AUDIO_INDEX = 2
TEXT_VIDEO_INDEX = 1
RERANK_INDEX = 11
NUM_DECKS, SLIDES_PER_DECK = 2, 5
DECK_SEED = 909
PAGE_QUERY = (2, 3)  # (deck, page): the page the text -> PDF page query describes


@dataclass
class DemoQuery:
    """One demo query and what it found."""

    title: str
    query: Any
    expected: str
    result: Any = None
    description: str | None = None

    @property
    def found(self) -> bool:
        return bool(self.result and self.result.hits) and os.path.abspath(self.result.hits[0].path) == os.path.abspath(self.expected)


@dataclass
class DemoOutcome:
    out_dir: Path
    page: Path
    queries: list[DemoQuery]
    report: Any
    """The :class:`~modalbridge.cli.results.IndexReport` of indexing the media folder."""
    seconds: float
    media: dict[str, list[str]] = field(default_factory=dict)

    @property
    def found(self) -> int:
        return sum(q.found for q in self.queries)


def _slug(caption: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", caption.lower()).strip("-")


def make_media(folder: str | os.PathLike) -> dict[str, Any]:
    """Write the demo's pictures, sounds and videos under ``folder``; returns their paths, captions and
    specs by kind (``{"image": [(path, caption, spec), ...], ...}``)."""
    import soundfile as sf

    folder = Path(folder)
    for kind in ("images", "sounds", "videos", "documents"):
        (folder / kind).mkdir(parents=True, exist_ok=True)
    media: dict[str, Any] = {"image": [], "audio": [], "video": [], "pdf": []}

    image_specs = synthetic.sample_specs(synthetic.image_combinations(), NUM_IMAGES, seed=GALLERY_SEED)
    for (picture, caption), spec in zip(synthetic.generate_images(specs=image_specs, seed=GALLERY_SEED), image_specs):
        path = folder / "images" / f"{_slug(caption)}.png"
        picture.save(path)
        media["image"].append((str(path.resolve()), caption, spec))

    sound_specs = synthetic.sample_specs(synthetic.sound_combinations(), NUM_SOUNDS, seed=GALLERY_SEED)
    for (sound, caption), spec in zip(synthetic.generate_sounds(specs=sound_specs, seed=GALLERY_SEED), sound_specs):
        path = folder / "sounds" / f"{_slug(caption)}.wav"
        sf.write(str(path), sound["array"], sound["sampling_rate"], subtype="PCM_16")
        media["audio"].append((str(path.resolve()), caption, spec))

    for (frames, caption), spec in zip(synthetic.generate_videos(specs=VIDEO_SPECS, seed=GALLERY_SEED), VIDEO_SPECS):
        path = folder / "videos" / f"{_slug(caption)}.mp4"
        synthetic.write_mp4(frames, path, fps=4)
        media["video"].append((str(path.resolve()), caption, spec))

    # Slides show pictures the gallery does not have, so a caption describes exactly one page.
    free = [spec for spec in synthetic.image_combinations() if spec not in set(image_specs)]
    slide_specs = synthetic.sample_specs(free, NUM_DECKS * SLIDES_PER_DECK, seed=DECK_SEED)
    for deck in range(NUM_DECKS):
        specs = slide_specs[deck * SLIDES_PER_DECK : (deck + 1) * SLIDES_PER_DECK]
        path = synthetic.write_slide_pdf(
            folder / "documents" / f"deck-{deck + 1}.pdf", specs, DECK_SEED, title=f"deck {deck + 1}",
            first_index=deck * SLIDES_PER_DECK,
        ).resolve()
        media["pdf"].extend((page_uri(path, number), spec.caption, spec) for number, spec in enumerate(specs, 1))
    return media


def _defaults(model: str | None, audio_model: str | None, reranker: str | None) -> tuple[str, str, str]:
    from modalbridge.cli.indexing import default_models, default_reranker

    if model is None or audio_model is None:
        demo_model, demo_audio = default_models()
        model, audio_model = model or demo_model, audio_model or demo_audio
    return model, audio_model, reranker or default_reranker()


def run_demo(
    out_dir: str | os.PathLike = "modalbridge-output",
    *,
    model: str | None = None,
    audio_model: str | None = None,
    reranker: str | None = None,
    device: str = "auto",
    progress: bool = True,
    stream: TextIO | None = None,
) -> DemoOutcome:
    """Run the demo (see the module doc) and print as it goes to ``stream`` (default: stdout).
    ``model`` / ``audio_model`` / ``reranker`` default to the demo models."""
    from modalbridge import Reranker
    from modalbridge.cli.indexing import MediaIndex
    from modalbridge.cli.results import format_hits
    from modalbridge.cli.store import open_client
    from modalbridge.cli.report import PageSection, write_results_page

    out = stream or sys.stdout
    started = time.perf_counter()

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    out_dir = Path(out_dir).resolve()
    model, audio_model, reranker_name = _defaults(model, audio_model, reranker)
    say(f"modalbridge demo -> {out_dir}")

    step = time.perf_counter()
    media = make_media(out_dir / "media")
    say(
        f"media: {len(media['image'])} pictures, {len(media['audio'])} sounds, {len(media['video'])} videos "
        f"and {NUM_DECKS} slide decks ({len(media['pdf'])} pages) in {out_dir / 'media'} ({time.perf_counter() - step:.1f} s)"
    )
    query_dir = out_dir / "queries"
    query_dir.mkdir(parents=True, exist_ok=True)
    held_out_spec = media["image"][IMAGE_IMAGE_INDEX][2]
    held_out_path = query_dir / f"held-out-{_slug(held_out_spec.caption)}.png"
    synthetic.generate_images(specs=[held_out_spec], seed=QUERY_SEED)[0][0].save(held_out_path)

    step = time.perf_counter()
    client = open_client(out_dir / "db")
    for name in (COLLECTION, COLLECTION + "-audio"):  # the demo starts from an empty index every time
        if name in {c if isinstance(c, str) else c.name for c in client.list_collections()}:
            client.delete_collection(name)
    index = MediaIndex(client, COLLECTION, model=model, audio_model=audio_model, device=device, progress=progress)
    report = index.index([out_dir / "media"])
    say(f"index ({time.perf_counter() - step:.1f} s): {report.summary()}")
    say(f"models: {model} (text, image; videos as {index.main.embedder.encode_settings.video_frames} frames), "
        f"{audio_model} (text, audio); reranker: {reranker_name}")

    image_path, image_caption, _ = media["image"][TEXT_IMAGE_INDEX]
    sound_path, sound_caption, _ = media["audio"][TEXT_AUDIO_INDEX]
    video_path, video_caption, _ = media["video"][TEXT_VIDEO_INDEX]
    rerank_path, rerank_caption, _ = media["image"][RERANK_INDEX]
    slide_page, slide_caption, _ = media["pdf"][(PAGE_QUERY[0] - 1) * SLIDES_PER_DECK + PAGE_QUERY[1] - 1]
    queries = [
        DemoQuery("text → image", image_caption, image_path),
        DemoQuery(
            "image → image", Image(str(held_out_path)), media["image"][IMAGE_IMAGE_INDEX][0],
            description="a new rendering of a gallery picture (other jitter) finds the original",
        ),
        DemoQuery("text → audio", sound_caption, sound_path),
        DemoQuery(
            "text → video", video_caption, video_path,
            description="videos are embedded as the mean of their frames by the image model",
        ),
        DemoQuery(
            "text → PDF page", slide_caption, slide_page,
            description="slides in PDF files; each page is embedded as an image, and the answer is one page",
        ),
        DemoQuery(
            "retrieve and rerank", rerank_caption, rerank_path,
            description=f"10 candidates from the index, reranked by {os.path.basename(reranker_name.rstrip('/'))}",
        ),
    ]
    kinds = {"text → image": "image", "image → image": "image", "text → audio": "audio", "text → video": "video",
             "text → PDF page": "image"}  # fmt: skip
    rerank_model = Reranker(reranker_name, device=device)

    for number, query in enumerate(queries, 1):
        step = time.perf_counter()
        if query.title == "retrieve and rerank":
            query.result = index.search(query.query, k=10, modality="image", reranker=rerank_model, top_n=3)
        else:
            query.result = index.search(query.query, k=3, modality=kinds[query.title])
        shown = query.query if isinstance(query.query, str) else os.path.relpath(query.query.source, out_dir)
        say()
        say(f"[{number}] {query.title}: {shown!r}" if isinstance(query.query, str) else f"[{number}] {query.title}: {shown}")
        say(format_hits(query.result, relative_to=out_dir))
        verdict = "yes" if query.found else "NO"
        say(f"top hit is the expected item ({os.path.relpath(query.expected, out_dir)}): {verdict} "
            f"({time.perf_counter() - step:.1f} s)")

    page = write_results_page(
        out_dir / "results.html",
        [PageSection(f"{q.title}", q.result, expected=q.expected, description=q.description) for q in queries],
        title="modalbridge demo",
        subtitle=f"{len(report.added) + len(report.updated) + len(report.unchanged)} files indexed into Chroma; "
        f"models: {os.path.basename(model.rstrip('/'))}, {os.path.basename(audio_model.rstrip('/'))}; "
        f"reranker: {os.path.basename(reranker_name.rstrip('/'))}",
    )
    seconds = time.perf_counter() - started
    outcome = DemoOutcome(out_dir, page, queries, report, seconds, {k: [p for p, _, _ in v] for k, v in media.items()})
    say()
    say(f"results page: {page}")
    say(f"done in {seconds:.1f} s: {outcome.found}/{len(queries)} queries found the expected item first")
    return outcome
