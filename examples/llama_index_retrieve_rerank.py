"""Text -> image and image -> image retrieval with multimodal reranking in LlamaIndex, fully offline.

Pictures (``ImageNode``) and a few text notes (``TextNode``) go into a ``MultiModalVectorStoreIndex``
backed by two Chroma collections, with ONE ``MultimodalEmbedding`` as both ``embed_model`` and
``image_embed_model`` (one loaded model). A query engine (``MockLLM``: no server, no key) retrieves text
and images, and ``MultimodalRerank`` reorders them, scoring each picture on its pixels (not its caption).

    python examples/llama_index_retrieve_rerank.py                                  # demo models + images
    python examples/llama_index_retrieve_rerank.py --query "a large blue star in the center"
    python examples/llama_index_retrieve_rerank.py --images photos/ --model sentence-transformers/clip-ViT-B-32 \\
        --reranker Qwen/Qwen3-VL-Reranker-2B --query "a dog on a sofa" --query-image photos/dog.jpg

Without ``--images``, synthetic pictures (``modalbridge.demo.synthetic``) are written to a temporary
folder; ``--model`` / ``--reranker`` default to the demo models in ``modalbridge.demo`` when available.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

from modalbridge.demo import demo_embedder_path, demo_reranker_path
from modalbridge.demo.synthetic import write_images

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

COSINE = {"hnsw:space": "cosine"}
NOTES = [
    "Circles and stars were drawn in bright primary colors.",
    "The gallery holds small and large shapes at five positions.",
    "Triangles point up; diamonds are squares turned by 45 degrees.",
]


def describe(hit) -> str:
    from llama_index.core.schema import ImageNode

    node = hit.node
    if isinstance(node, ImageNode):
        return f"[image] {node.metadata.get('caption', ''):<42} {Path(node.image_path).name}"
    return f"[text]  {node.get_content()[:60]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=demo_embedder_path(), help="text+image embedding model")
    parser.add_argument("--reranker", default=demo_reranker_path(), help="(text, image) reranker")
    parser.add_argument("--images", type=Path, help="folder of images (default: synthetic demo pictures)")
    parser.add_argument("--num-images", type=int, default=24, help="synthetic pictures to generate")
    parser.add_argument("--query", default="a small red circle in the top left")
    parser.add_argument("--query-image", help="an image to search with (default: the first indexed image)")
    parser.add_argument("--k", type=int, default=6, help="images retrieved before reranking")
    parser.add_argument("--top-n", type=int, default=3, help="nodes kept after reranking")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    import chromadb
    from llama_index.core import StorageContext
    from llama_index.core.indices import MultiModalVectorStoreIndex
    from llama_index.core.llms import MockLLM
    from llama_index.core.schema import ImageNode, QueryBundle, TextNode
    from llama_index.vector_stores.chroma import ChromaVectorStore
    from modalbridge.llama_index import MultimodalEmbedding, MultimodalRerank
    from modalbridge.media import IMAGE_EXTENSIONS

    workdir = tempfile.TemporaryDirectory()
    if args.images is None:
        paths, captions = write_images(Path(workdir.name), args.num_images)
    else:
        paths = sorted(str(p) for p in args.images.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        captions = [Path(p).name for p in paths]
        if not paths:
            parser.error(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {args.images}")

    # An ImageNode with no text at all would be skipped by the index ("Some nodes are missing content"):
    # its caption goes in metadata, which the image embedding and the reranker never read.
    nodes = [
        ImageNode(image_path=path, metadata={"caption": caption}, id_=f"image-{i}")
        for i, (path, caption) in enumerate(zip(paths, captions, strict=True))
    ]
    nodes += [TextNode(text=note, id_=f"note-{i}") for i, note in enumerate(NOTES)]

    client = chromadb.EphemeralClient(settings=chromadb.Settings(anonymized_telemetry=False))
    storage = StorageContext.from_defaults(
        vector_store=ChromaVectorStore(
            chroma_collection=client.get_or_create_collection("llama-index-text", metadata=COSINE)
        ),
        image_store=ChromaVectorStore(
            chroma_collection=client.get_or_create_collection("llama-index-images", metadata=COSINE)
        ),
    )
    embed = MultimodalEmbedding(args.model, device=args.device, normalize=True)
    index = MultiModalVectorStoreIndex(nodes, storage_context=storage, embed_model=embed, image_embed_model=embed)
    print(f"indexed {len(paths)} images and {len(NOTES)} notes with {args.model} (Chroma)")

    retriever = index.as_retriever(similarity_top_k=2, image_similarity_top_k=args.k)
    print(f"\nquery: {args.query!r}\n\nretrieved (vector search: 2 notes, {args.k} images):")
    for rank, hit in enumerate(retriever.retrieve(args.query), 1):
        print(f"  {rank:2d}. {describe(hit)}  {hit.score:.3f}")

    query_image = args.query_image or paths[0]
    print(f"\nimage query: {Path(query_image).name}\n\nretrieved (image -> image, top {min(3, args.k)}):")
    for rank, hit in enumerate(retriever.image_to_image_retrieve(query_image)[:3], 1):
        print(f"  {rank:2d}. {describe(hit)}  {hit.score:.3f}")

    if args.reranker is None:
        print("\n(no --reranker and no demo reranker: skipping reranking)")
        return 0
    rerank = MultimodalRerank(args.reranker, device=args.device, top_n=args.top_n)
    with warnings.catch_warnings():  # SimpleMultiModalQueryEngine is deprecated in 0.14.23; MockLLM is not "multi"
        warnings.simplefilter("ignore", DeprecationWarning)
        engine = index.as_query_engine(
            llm=MockLLM(max_tokens=24), node_postprocessors=[rerank], similarity_top_k=2, image_similarity_top_k=args.k
        )
        response = engine.query(args.query)
    print(f"\nquery engine, reranked with {args.reranker} (top {args.top_n}):")
    for rank, hit in enumerate(response.source_nodes, 1):
        print(f"  {rank:2d}. {describe(hit)}  score {hit.score:+.3f}")
    print(f"answer (MockLLM's placeholder text): {str(response)[:40]!r}")

    # The reranker also takes an image as the query (QueryBundle.image_path).
    image_hits = retriever.image_to_image_retrieve(query_image)
    reranked = rerank.postprocess_nodes(image_hits, QueryBundle(query_str="", image_path=query_image))
    print(f"\nimage query reranked (top {args.top_n}):")
    for rank, hit in enumerate(reranked, 1):
        print(f"  {rank:2d}. {describe(hit)}  score {hit.score:+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
