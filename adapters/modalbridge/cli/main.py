"""The ``modalbridge`` command: index files into Chroma, search them, run the offline demo.

::

    modalbridge index ~/Pictures ~/Music notes/           # embedded Chroma in ./modalbridge-db
    modalbridge search "a dog on a beach" -k 10 --html results.html
    modalbridge search --image query.jpg --reranker Qwen/Qwen3-VL-Reranker-2B --top-n 5
    modalbridge demo --out demo/

Exit codes: 0 success; 1 ``index`` stored everything it could but some files failed (listed);
2 usage errors and errors that stop the command (a model that cannot be loaded, a missing index, an
unreachable server, an unreadable query file) — the message is printed, without a traceback.
The logic lives in :mod:`modalbridge.cli.indexing` (and its parts beside it), :mod:`modalbridge.cli.report`
and :mod:`modalbridge.demo.showcase`; this module only parses arguments and prints.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

PROG = "modalbridge"


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return number


def build_parser() -> argparse.ArgumentParser:
    from modalbridge import __version__
    from modalbridge.cli.model_settings import command_settings
    from modalbridge.settings import MACHINE_LOCAL, SETTINGS, add_cli_options  # flags come from the declaration

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Index images, sounds, videos and text files into Chroma and search them across "
        "modalities with sentence-transformers models.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    store = argparse.ArgumentParser(add_help=False)
    group = store.add_argument_group("where the index lives")
    group.add_argument("--db", default="modalbridge-db", metavar="PATH",
                       help="folder of the embedded Chroma database (default: ./modalbridge-db)")
    group.add_argument("--host", help="use a Chroma server at this host instead of --db")
    group.add_argument("--port", type=int, help="the Chroma server's port (default: 8000)")
    group.add_argument("--collection", default="modalbridge", metavar="NAME",
                       help="collection name (default: modalbridge; the audio model's is NAME-audio)")

    models = argparse.ArgumentParser(add_help=False)
    group = models.add_argument_group("models (hub names or local folders)")
    group.add_argument("--model", metavar="MODEL",
                       help="embedding model (default: the collection's own model, else the demo text+image model)")
    group.add_argument("--audio-model", metavar="MODEL",
                       help="embedding model for audio when --model takes none (default: the collection's own, "
                       "else the demo text+audio model when --model is not given)")
    local = ", ".join(SETTINGS[n].cli for n in command_settings() if n in MACHINE_LOCAL)
    group = models.add_argument_group(
        "model settings",
        "for --model and --audio-model (those about pictures for --model only). A new collection stores the "
        "ones that decide its vectors; on an existing collection those must equal the stored values, and "
        f"the machine-local ones ({local}) apply to this run",
    )
    add_cli_options(
        group,
        command_settings(),  # every embedder setting with a flag (see model_settings.NOT_ON_THE_COMMAND_LINE)
        defaults={"device": "auto", "batch_size": 32},
        notes={"video_frames": "default for a new collection: 8"},
    )

    index = commands.add_parser(
        "index", parents=[store, models], help="embed files and folders into the index",
        description="Embed images, audio, video, PDFs (one record per page, file.pdf#page=N) and .txt/.md files "
        "(folders recursively) and upsert them into Chroma. Ids are absolute paths: indexing again updates changed "
        "files and skips unchanged ones.",
    )
    index.add_argument("paths", nargs="+", metavar="PATH", help="files and folders")
    index.add_argument("--multi-vector", metavar="MODEL",
                       help="index with a late-interaction model (ColPali/ColQwen2, a MultiVectorEncoder): one "
                       "fixed-size vector per file in Chroma for the first stage, the token vectors beside it; "
                       "search then ranks by exact MaxSim")
    index.add_argument("--first-stage", choices=("muvera", "mean"), default="muvera",
                       help="first-stage vector of a new --multi-vector collection (default: muvera)")
    index.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    scale = index.add_argument_group("scale out with Ray (needs modalbridge[ray])")
    scale.add_argument("--ray", action="store_true",
                       help="embed on a Ray cluster: a local one, or the one at RAY_ADDRESS (model actors embed, "
                       "the command stores; the same ids and vectors as without --ray)")
    scale.add_argument("--ray-actors", type=_positive, metavar="N",
                       help="model actors (default: one per GPU in the cluster, else 1)")
    scale.add_argument("--ray-decode", choices=("auto", "cpu", "actor"), default=None,
                       help="where images and audio are decoded: on CPU tasks ahead of the actors, in the actors, "
                       "or auto (default: CPU tasks when the actors have GPUs, else the actors)")
    index.set_defaults(func=_index)

    search = commands.add_parser(
        "search", parents=[store, models], help="search the index with a text, image, audio or video query",
        description="Retrieve the nearest files to a query, optionally rerank them, print a table and write an "
        "HTML page.",
    )
    search.add_argument("query", nargs="?", help="a text query (always text, never read as a file)")
    kind = search.add_mutually_exclusive_group()
    kind.add_argument("--image", metavar="FILE", help="search with an image file")
    kind.add_argument("--audio", metavar="FILE", help="search with an audio file")
    kind.add_argument("--video", metavar="FILE", help="search with a video file")
    search.add_argument("-k", type=_positive, default=10, help="candidates to retrieve (default: 10)")
    search.add_argument("--modality", choices=("text", "image", "audio", "video"),
                        help="only return files of this kind")
    search.add_argument("--reranker", metavar="MODEL",
                        help="rerank the candidates with this cross-encoder ('demo': the demo reranker)")
    search.add_argument("--top-n", type=_positive, metavar="N", help="keep the best N after reranking (default: all)")
    search.add_argument("--html", metavar="FILE", help="also write a self-contained results page")
    search.add_argument("--candidates", type=_positive, metavar="N",
                        help="late-interaction collections: first-stage candidates rescored by MaxSim "
                        "(default: max(100, 10 * k))")
    search.set_defaults(func=_search)

    demo = commands.add_parser(
        "demo", help="offline end-to-end demo: make media, index, search, rerank, write a page",
        description="Generate pictures, sounds and videos of shapes, index them into an embedded Chroma under DIR, "
        "run text->image, image->image, text->audio, text->video and retrieve-and-rerank queries, and write "
        "DIR/results.html. Runs offline with the small demo models.",
    )
    demo.add_argument("--out", default="modalbridge-output", metavar="DIR", help="output folder (default: ./modalbridge-output)")
    demo.add_argument("--model", metavar="MODEL", help="text+image embedder (default: the demo model)")
    demo.add_argument("--audio-model", metavar="MODEL", help="text+audio embedder (default: the demo model)")
    demo.add_argument("--reranker", metavar="MODEL", help="(text, image) reranker (default: the demo model)")
    add_cli_options(demo, ["device"], defaults={"device": "auto"})
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_demo)
    return parser


def given_settings(args) -> dict[str, object]:
    """The model settings of this command line by name: the flags given (a switch when on), and the
    defaults the parser gives (``--device auto``, ``--batch-size 32``, both machine-local)."""
    from modalbridge.cli.model_settings import command_settings

    values = {n: getattr(args, n) for n in command_settings()}
    return {n: v for n, v in values.items() if v is not None and v is not False}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "search" and (args.query is None) == all(v is None for v in (args.image, args.audio, args.video)):
        parser.error("search: give a text QUERY or one of --image/--audio/--video (not both)")
    if args.command in ("index", "search") and args.port is not None and args.host is None:
        args.host = "localhost"
    _quiet_libraries()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - expected failures become a message and exit code 2
        if not _is_expected(exc):
            raise
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


def _is_expected(exc: Exception) -> bool:
    from modalbridge.cli.store import MediaIndexError
    from modalbridge.loading import ModelLoadError
    from modalbridge.media import MediaError

    if isinstance(exc, (ModelLoadError, MediaIndexError, MediaError, PermissionError)):
        return True
    return type(exc).__module__.startswith("chromadb")  # e.g. an invalid collection name


def _quiet_libraries() -> None:
    """No model-loading progress bars or library warnings in the command's output."""
    import logging
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"transformers\.")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def _client(args, create: bool):
    from modalbridge.cli.store import open_client

    return open_client(args.db, args.host, args.port, create=create)


def _where(args) -> str:
    return f"http://{args.host}:{args.port or 8000}" if args.host else os.path.abspath(args.db)


def _index(args) -> int:
    from modalbridge.cli.indexing import MediaIndex
    from modalbridge.cli.store import MediaIndexError

    for flag, value in (("--ray-actors", args.ray_actors), ("--ray-decode", args.ray_decode)):
        if value is not None and not args.ray:
            raise MediaIndexError(f"{flag} needs --ray")
    client = _client(args, create=True)
    if args.multi_vector or _is_late_interaction(client, args.collection):
        if args.ray:
            raise MediaIndexError("--ray embeds single-vector collections only; leave it out for --multi-vector")
        return _index_late_interaction(args, client)
    embedding = None
    if args.ray:
        try:
            from modalbridge.ray import RayEmbedding
        except ImportError as exc:
            raise MediaIndexError(f"--ray needs Ray Data ({exc})") from None
        embedding = RayEmbedding(actors=args.ray_actors, batch_size=args.batch_size, decode=args.ray_decode or "auto")
    index = MediaIndex(
        client,
        args.collection,
        model=args.model,
        audio_model=args.audio_model,
        settings=given_settings(args),
        progress=not args.quiet,
        embedding=embedding,
    )
    exclude = [] if args.host else [args.db]
    try:
        report = index.index(args.paths, exclude=exclude)
    finally:
        if embedding is not None:
            embedding.close()
    print(f"indexed into {args.collection!r} at {_where(args)}: {report.summary()}")
    return 0 if report.ok else 1


def _is_late_interaction(client, name: str) -> bool:
    from modalbridge.chroma import is_late_interaction
    from modalbridge.cli.store import get_collection

    collection = get_collection(client, name)
    return collection is not None and is_late_interaction(collection)


def _index_late_interaction(args, client) -> int:
    from modalbridge.cli.late_interaction import index_late_interaction, open_late_interaction
    from modalbridge.cli.store import MediaIndexError

    given = [flag for flag, value in (("--model", args.model), ("--audio-model", args.audio_model)) if value]
    if given:
        raise MediaIndexError(
            f"collection {args.collection!r} is a late-interaction index (--multi-vector) with its own model: "
            f"leave out {', '.join(given)}"
        )
    pages = open_late_interaction(
        client, args.collection, model=args.multi_vector, settings=given_settings(args), first_stage=args.first_stage
    )
    exclude = [] if args.host else [args.db]
    report = index_late_interaction(pages, args.paths, exclude=exclude, progress=not args.quiet)
    print(f"indexed into {args.collection!r} (late interaction, {pages.index.encoding.name} first stage) at {_where(args)}: {report.summary()}")
    return 0 if report.ok else 1


def _search(args) -> int:
    from modalbridge import Reranker
    from modalbridge.cli.files import query_item
    from modalbridge.cli.indexing import MediaIndex, default_reranker
    from modalbridge.cli.model_settings import reranker_settings

    query = query_item(args.query, image=args.image, audio=args.audio, video=args.video)
    client = _client(args, create=False)
    late = _late_interaction(client, args)
    if late is not None:
        from modalbridge.cli.late_interaction import search_late_interaction

        result = search_late_interaction(late, query, k=args.k, candidates=args.candidates, modality=args.modality)
        return _show(args, result, None)
    if args.candidates is not None:
        from modalbridge.cli.store import MediaIndexError

        raise MediaIndexError(f"--candidates is for late-interaction collections; {args.collection!r} is not one")
    settings = given_settings(args)
    index = MediaIndex(
        _client(args, create=False),
        args.collection,
        model=args.model,
        audio_model=args.audio_model,
        settings=settings,
        use_demo_models=False,
    )
    reranker = None
    if args.reranker:
        name = default_reranker() if args.reranker == "demo" and not os.path.isdir("demo") else args.reranker
        reranker = Reranker(name, trust_remote_code=args.trust_remote_code, **reranker_settings(settings))
    result = index.search(query, k=args.k, modality=args.modality, reranker=reranker, top_n=args.top_n)
    return _show(args, result, reranker)


def _late_interaction(client, args):
    """The late-interaction collection named by ``--collection``, or ``None`` for a single-vector index."""
    from modalbridge.cli.late_interaction import open_late_interaction
    from modalbridge.cli.store import MediaIndexError

    if not _is_late_interaction(client, args.collection):
        return None
    given = [flag for flag, value in (("--model", args.model), ("--audio-model", args.audio_model),
                                      ("--reranker", args.reranker), ("--top-n", args.top_n)) if value]
    if given:
        raise MediaIndexError(
            f"collection {args.collection!r} is a late-interaction index, ranked by exact MaxSim with its own model: "
            f"leave out {', '.join(given)}"
        )
    return open_late_interaction(client, args.collection, settings=given_settings(args), create=False)


def _show(args, result, reranker) -> int:
    from modalbridge.cli.results import format_hits

    print(format_hits(result))
    if args.html:
        from modalbridge.cli.report import PageSection, write_results_page

        title = result.query if isinstance(result.query, str) else f"{result.query_modality} query: {os.path.basename(result.query.source)}"
        path = write_results_page(
            args.html,
            [PageSection(title, result)],
            subtitle=f"collection {args.collection!r} at {_where(args)}"
            + (f"; reranked by {reranker.load_settings.model_name_or_path}" if reranker else ""),
        )
        print(f"results page: {path}")
    return 0


def _demo(args) -> int:
    from modalbridge.demo.showcase import run_demo

    run_demo(
        args.out,
        model=args.model,
        audio_model=args.audio_model,
        reranker=args.reranker,
        device=args.device,
        progress=not args.quiet,
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
