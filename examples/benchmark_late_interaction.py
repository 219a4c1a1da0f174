"""Late interaction on Chroma, measured in one run: two-stage search against exhaustive MaxSim.

A corpus of generated pictures is embedded once with a late-interaction model (a tiny ColQwen2 built
offline by default), then stored in Chroma collections with different first stages: MUVERA, the mean
token vector, and MUVERA over token-pooled documents. For each, and for several candidate counts, it
prints Recall@k of the two-stage search (first stage from Chroma, exact MaxSim on the candidates from the
matrix store) against exhaustive MaxSim over every record, the disk bytes per record (matrix store and
Chroma), and the median search latency against exhaustive MaxSim (query encoding is timed apart)::

    python examples/benchmark_late_interaction.py --threads 1 --seeds 0,1,2   # 2,000 records, tiny ColQwen2
    python examples/benchmark_late_interaction.py --records 10000 --model vidore/colqwen2-v1.0-hf --device cuda
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def folder_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="late-interaction model (default: a tiny ColQwen2 built offline)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--candidates", default="100,200,400", help="first-stage candidate counts to try")
    parser.add_argument("--bits", type=int, default=3, help="MUVERA SimHash bits per repetition")
    parser.add_argument("--repetitions", type=int, default=8, help="MUVERA repetitions")
    parser.add_argument("--seeds", default="0", help="MUVERA seeds to try (each its own collection), e.g. 0,1,2")
    parser.add_argument("--pool-factor", type=float, default=2.0, help="token pooling factor of the pooled variant")
    parser.add_argument("--out", help="folder for the databases (default: a temporary folder)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's; 1 is steadiest on a busy machine)")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    import chromadb

    from modalbridge import Image
    from modalbridge.chroma import LateInteractionCollection
    from modalbridge.demo.synthetic import generate_images
    from modalbridge.multivector import MultiVectorEmbedder

    out = args.out or tempfile.mkdtemp(prefix="late-interaction-")
    model_path = args.model
    if model_path is None:
        from modalbridge.testing import build_tiny_colqwen2

        model_path = build_tiny_colqwen2(Path(out) / "tiny_colqwen2")
    embedder = MultiVectorEmbedder(model_path, device=args.device, batch_size=32)

    pictures = generate_images(args.records, seed=11)
    items = [Image(picture) for picture, _ in pictures]
    ids = [f"picture-{i:05d}" for i in range(len(items))]
    queries = [caption for _, caption in generate_images(args.queries, seed=12)]

    start = time.perf_counter()
    matrices = embedder.embed_documents(items)
    embed_seconds = time.perf_counter() - start
    query_times, encoded_queries = [], []
    from modalbridge.late_interaction import EncodedQuery

    for query in queries:
        start = time.perf_counter()
        encoded_queries.append(embedder.embed_query(query))
        query_times.append(time.perf_counter() - start)
    tokens = [len(m) for m in matrices]
    print(
        f"{len(items)} records ({statistics.mean(tokens):.1f} tokens of {embedder.dimension}-d each on average), "
        f"{len(queries)} text queries; embedding {len(items) / embed_seconds:.0f} records/s; "
        f"query encoding median {1000 * statistics.median(query_times):.2f} ms"
    )

    def exhaustive_top(stored: list[np.ndarray]) -> tuple[list[set[str]], list[float]]:
        """The reference: exhaustive MaxSim over every record, all matrices in memory."""
        tops, times = [], []
        for query in encoded_queries:
            start = time.perf_counter()
            scores = embedder.score(query, stored)
            top = np.argsort(-scores, kind="stable")[: args.k]
            times.append(time.perf_counter() - start)
            tops.append({ids[i] for i in top})
        return tops, times

    exhaustive_top(matrices[:50])  # warm-up
    exhaustive, exhaustive_times = exhaustive_top(matrices)
    exhaustive_ms = 1000 * statistics.median(exhaustive_times)

    pooled_matrices = None
    seeds = [int(seed) for seed in args.seeds.split(",")]
    muvera = {"bits": args.bits, "repetitions": args.repetitions}
    variants = [("muvera", {**muvera, "seed": seed}, False) for seed in seeds] + [("mean", {}, False)]
    if args.pool_factor and args.pool_factor > 1:
        variants.append(("muvera", {**muvera, "seed": seeds[0]}, True))
    candidate_counts = [int(c) for c in args.candidates.split(",")]
    results: dict[str, dict] = {}
    rows = []
    for first_stage, options, pooled in variants:
        name = first_stage + (f" seed {options['seed']}" if len(seeds) > 1 and "seed" in options else "")
        name += f" + pooling x{args.pool_factor:g}" if pooled else ""
        variant_embedder = embedder
        stored = matrices
        if pooled:
            import torch

            variant_embedder = MultiVectorEmbedder(model_path, device=args.device, token_pool_factor=args.pool_factor)
            pooling = variant_embedder.token_pooling()
            if pooled_matrices is None:  # what encode_document(token_pooling=...) does after encoding
                pooled_matrices = [t.numpy() for t in pooling.pool([torch.from_numpy(m) for m in matrices], task="document")]
            stored = pooled_matrices
            own_exhaustive, _ = exhaustive_top(stored)
        else:
            own_exhaustive = exhaustive
        db = os.path.join(out, "db-" + name.replace(" ", "-").replace("+", "-"))
        client = chromadb.PersistentClient(db, settings=chromadb.Settings(anonymized_telemetry=False))
        collection = LateInteractionCollection.create(client, "pictures", variant_embedder, first_stage=first_stage, **options)
        start = time.perf_counter()
        collection.upsert(ids, items, matrices=stored)
        write_seconds = time.perf_counter() - start
        store_bytes = collection.index.store.disk_bytes()
        chroma_bytes = folder_bytes(db) - store_bytes
        entry = {
            "first_stage_dimension": collection.index.dimension,
            "store_bytes_per_record": store_bytes / len(ids),
            "chroma_bytes_per_record": chroma_bytes / len(ids),
            "write_records_per_s": len(ids) / write_seconds,
            "candidates": {},
        }
        collection.query(EncodedQuery(encoded_queries[0], collection.index.encoding.encode_query(encoded_queries[0])))  # warm-up
        for candidates in candidate_counts:
            recalls, own_recalls, times = [], [], []
            for query, truth, own in zip(encoded_queries, exhaustive, own_exhaustive):
                encoded = EncodedQuery(query, collection.index.encoding.encode_query(query))
                start = time.perf_counter()
                hits = collection.query(encoded, n_results=args.k, candidates=candidates)
                times.append(time.perf_counter() - start)
                recalls.append(len(truth & set(hits.ids)) / args.k)
                own_recalls.append(len(own & set(hits.ids)) / args.k)
            entry["candidates"][candidates] = {
                "recall": float(np.mean(recalls)),
                "recall_vs_own_exhaustive": float(np.mean(own_recalls)),
                "latency_ms": 1000 * statistics.median(times),
            }
            rows.append((name, collection.index.dimension, candidates, float(np.mean(recalls)), float(np.mean(own_recalls)),
                         1000 * statistics.median(times), store_bytes / len(ids), chroma_bytes / len(ids)))
        results[name] = entry

    print(f"\nexhaustive MaxSim over {len(ids)} records (in memory): median {exhaustive_ms:.2f} ms per query\n")
    recall = f"Recall@{args.k}"
    header = (
        f"{'first stage':<22} {'dim':>5} {'cand.':>6} {recall:>10} {'(own)':>7} {'ms/query':>9} {'vs exh.':>8} "
        f"{'store B/rec':>12} {'Chroma B/rec':>13}"
    )
    print(header)
    print("-" * len(header))
    for name, dim, candidates, recall_value, own, ms, store, chroma in rows:
        print(
            f"{name:<22} {dim:>5} {candidates:>6} {recall_value:>10.3f} {own:>7.3f} {ms:>9.2f} {ms / exhaustive_ms:>7.2f}x "
            f"{store:>12.0f} {chroma:>13.0f}"
        )
    print(
        f"\n{recall}: the share of exhaustive MaxSim's top {args.k} (over the full token vectors) the two-stage search "
        "returns; (own): against exhaustive MaxSim over what the variant stores (differs for pooled tokens)."
    )
    results["exhaustive_ms"] = exhaustive_ms  # type: ignore[assignment]
    return results


if __name__ == "__main__":
    main()
