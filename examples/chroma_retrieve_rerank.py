"""Text -> image retrieval in Chroma and multimodal reranking, fully offline.

Image files go into a Chroma collection by URI (``MultimodalDataLoader`` decodes them, the
``MultimodalEmbeddingFunction`` embeds them), a text query retrieves the nearest images, and
``rerank_query_result`` reranks the hits with a (text, image) reranker that looks at the pictures.

    python examples/chroma_retrieve_rerank.py                                   # demo models + pictures
    python examples/chroma_retrieve_rerank.py --query "a large blue star in the center"
    python examples/chroma_retrieve_rerank.py --images photos/ --model sentence-transformers/clip-ViT-B-32 \\
        --reranker Qwen/Qwen3-VL-Reranker-2B --query "a dog on a sofa" --persist ./chroma-db

Without ``--images``, synthetic pictures (``modalbridge.demo.synthetic``) are written to a temporary
folder; ``--model`` / ``--reranker`` default to the demo models in ``modalbridge.demo`` when present.
With ``--persist DIR`` the collection is stored there; run again with the same DIR and it is reopened
with ``client.get_collection(name)``: the embedding function is rebuilt from what Chroma stored.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from modalbridge.demo import demo_embedder_path, demo_reranker_path
from modalbridge.demo.synthetic import write_images

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

COLLECTION = "modalbridge-example"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=demo_embedder_path(), help="text+image embedding model")
    parser.add_argument("--reranker", default=demo_reranker_path(), help="(text, image) reranker")
    parser.add_argument("--images", type=Path, help="folder of images (default: synthetic demo pictures)")
    parser.add_argument("--num-images", type=int, default=24, help="synthetic pictures to generate")
    parser.add_argument("--query", default="a small red circle in the top left")
    parser.add_argument("--k", type=int, default=8, help="images retrieved before reranking")
    parser.add_argument("--top-n", type=int, default=3, help="images kept after reranking")
    parser.add_argument("--persist", type=Path, help="store the collection in this folder (default: in memory)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    import chromadb

    from modalbridge import Reranker
    from modalbridge.chroma import MultimodalDataLoader, MultimodalEmbeddingFunction, rerank_query_result
    from modalbridge.media import IMAGE_EXTENSIONS

    client = chromadb.PersistentClient(str(args.persist)) if args.persist else chromadb.EphemeralClient()
    loader = MultimodalDataLoader(modality="image")
    if args.persist and COLLECTION in [c.name for c in client.list_collections()]:
        # Reopened: no function passed, Chroma rebuilds the stored one (importing modalbridge.chroma registered it).
        collection = client.get_collection(COLLECTION, data_loader=loader)
        model = collection.configuration_json["embedding_function"]["config"]["model_name_or_path"]
        print(f"reopened {COLLECTION!r} in {args.persist}: {collection.count()} images, embedded with {model}")
    else:
        if args.images is None:  # the pictures must outlive a persisted collection that names them
            folder = args.persist / "images" if args.persist else Path(tempfile.mkdtemp(prefix="modalbridge-chroma-"))
            folder.mkdir(parents=True, exist_ok=True)
            uris, captions = write_images(folder.resolve(), args.num_images)
        else:
            uris = sorted(str(p.resolve()) for p in args.images.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
            captions = [Path(u).name for u in uris]
            if not uris:
                parser.error(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {args.images}")
        embedding_function = MultimodalEmbeddingFunction(args.model, device=args.device)
        collection = client.create_collection(COLLECTION, embedding_function=embedding_function, data_loader=loader)
        collection.add(ids=[f"img{i:03d}" for i in range(len(uris))], uris=uris, metadatas=[{"caption": c} for c in captions])
        space = collection.configuration_json["hnsw"]["space"]
        print(f"indexed {len(uris)} images with {args.model} (distance space {space!r}, from the model)")

    hits = collection.query(
        query_texts=[args.query], n_results=min(args.k, collection.count()), include=["uris", "metadatas", "distances"]
    )
    print(f"\nquery: {args.query!r}\n\nretrieved (vector search, top {args.k}):")
    for rank, (metadata, uri, distance) in enumerate(zip(hits["metadatas"][0], hits["uris"][0], hits["distances"][0]), 1):
        print(f"  {rank:2d}. {metadata['caption']:<45} {Path(uri).name:<22} distance {distance:.3f}")

    if args.reranker is None:
        print("\n(no --reranker and no demo reranker: skipping reranking)")
        return 0
    reranker = Reranker(args.reranker, device=args.device)
    # source="uris": each hit is scored as its image file (tagged by extension), not as text.
    ranked = rerank_query_result(hits, args.query, reranker, top_n=args.top_n, source="uris")
    print(f"\nreranked with {args.reranker} (top {args.top_n}):")
    for rank, (metadata, score, position) in enumerate(zip(ranked.metadatas, ranked.scores, ranked.positions), 1):
        print(f"  {rank:2d}. {metadata['caption']:<45} score {score:+.3f}   (was #{position + 1})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
