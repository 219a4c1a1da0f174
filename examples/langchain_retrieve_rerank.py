"""Text -> image retrieval and multimodal reranking with LangChain, fully offline.

Images go into a LangChain vector store through ``MultimodalEmbeddings`` (``Chroma.add_images`` calls its
``embed_image``; with ``--store memory`` an ``InMemoryVectorStore`` whose page_content is the image path),
a text query retrieves the nearest images, ``MultimodalRerank`` reranks them inside a
``ContextualCompressionRetriever``, and an LCEL chain hands the reranked captions to a fake chat model.

    python examples/langchain_retrieve_rerank.py                                   # demo models + images
    python examples/langchain_retrieve_rerank.py --query "a large blue star in the center"
    python examples/langchain_retrieve_rerank.py --images photos/ --model sentence-transformers/clip-ViT-B-32 \\
        --reranker Qwen/Qwen3-VL-Reranker-2B --query "a dog on a sofa"

Without ``--images``, a set of synthetic pictures (``modalbridge.demo.synthetic``) is written to a
temporary folder; ``--model`` / ``--reranker`` default to the demo models shipped in ``modalbridge.demo``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from modalbridge.demo import demo_embedder_path, demo_reranker_path
from modalbridge.demo.synthetic import write_images

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=demo_embedder_path(), help="text+image embedding model")
    parser.add_argument("--reranker", default=demo_reranker_path(), help="(text, image) reranker")
    parser.add_argument("--images", type=Path, help="folder of images (default: synthetic demo pictures)")
    parser.add_argument("--num-images", type=int, default=24, help="synthetic pictures to generate")
    parser.add_argument("--query", default="a small red circle in the top left")
    parser.add_argument("--k", type=int, default=8, help="images retrieved before reranking")
    parser.add_argument("--top-n", type=int, default=3, help="images kept after reranking")
    parser.add_argument("--store", choices=["chroma", "memory"], default="chroma")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    from langchain_classic.retrievers import ContextualCompressionRetriever
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough

    from modalbridge.langchain import MultimodalEmbeddings, MultimodalRerank
    from modalbridge.media import IMAGE_EXTENSIONS

    workdir = tempfile.TemporaryDirectory()
    if args.images is None:
        uris, captions = write_images(Path(workdir.name), args.num_images)
    else:
        uris = sorted(str(p) for p in args.images.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        captions = [Path(u).name for u in uris]
        if not uris:
            parser.error(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {args.images}")
    metadatas = [{"image": uri, "caption": caption} for uri, caption in zip(uris, captions)]

    if args.store == "chroma":
        from langchain_chroma import Chroma

        embeddings = MultimodalEmbeddings(model_name=args.model, device=args.device, normalize=True)
        store = Chroma(collection_name="langchain-example", embedding_function=embeddings)
        store.add_images(uris=uris, metadatas=metadatas)  # page_content: base64 of each file
    else:
        from langchain_core.vectorstores import InMemoryVectorStore

        embeddings = MultimodalEmbeddings(model_name=args.model, device=args.device, document_modality="image")
        store = InMemoryVectorStore(embeddings)
        store.add_texts(uris, metadatas=metadatas)  # page_content: the image path
    print(f"indexed {len(uris)} images with {args.model} ({args.store})")

    base = store.as_retriever(search_kwargs={"k": args.k})
    print(f"\nquery: {args.query!r}\n\nretrieved (vector search, top {args.k}):")
    for rank, document in enumerate(base.invoke(args.query), 1):
        print(f"  {rank:2d}. {document.metadata['caption']:<45} {Path(document.metadata['image']).name}")

    if args.reranker is None:
        print("\n(no --reranker and no demo reranker: skipping reranking)")
        return 0
    # Each document names its image in metadata["image"], so the reranker scores the picture itself.
    reranker = MultimodalRerank(model_name=args.reranker, device=args.device, top_n=args.top_n)
    retriever = ContextualCompressionRetriever(base_compressor=reranker, base_retriever=base)
    print(f"\nreranked with {args.reranker} (top {args.top_n}):")
    for rank, document in enumerate(retriever.invoke(args.query), 1):
        score = document.metadata["relevance_score"]
        print(f"  {rank:2d}. {document.metadata['caption']:<45} score {score:+.3f}")

    # The same retriever in an LCEL chain; the fake chat model needs no server. The prompt is printed.
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Describe the best matching pictures:\n{context}"), ("human", "{question}")]
    )

    def show(prompt_value):
        print("\nprompt sent to the chat model:\n" + prompt_value.to_string())
        return prompt_value

    context = RunnableLambda(lambda docs: "\n".join(f"- {d.metadata['caption']}" for d in docs))
    chain = (
        {"context": retriever | context, "question": RunnablePassthrough()}
        | prompt
        | RunnableLambda(show)
        | FakeListChatModel(responses=["(a fake answer)"])
    )
    print("answer:", chain.invoke(args.query).content)
    if args.store == "chroma":
        store.delete_collection()
    return 0


if __name__ == "__main__":
    sys.exit(main())
