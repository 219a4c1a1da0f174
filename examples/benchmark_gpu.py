"""Feeding a GPU: image-embedding throughput side by side, from one run, for two model sizes.

For a ViT-B/32-sized CLIP (fp16) and a Qwen3-VL-2B-sized embedder (bf16), both with random weights built
offline (nothing is downloaded), it times on the same JPEG files:

1. sentence-transformers ``encode_document(paths)`` (it decodes the files itself);
2. ``encode_document(images)`` on images decoded beforehand (decoding not timed: the model's ceiling
   when decoding is free);
3. modalbridge's core, exact path (``image_decode="cpu"``: files decoded in worker threads, the model's
   processor on the CPU);
4. modalbridge's device path (``image_decode="gpu"``: JPEGs decoded in batches on the GPU, resized and
   normalized there) where the model qualifies (CLIP-like processors; not Qwen-VL).

and prints images/s, the ratio to ``encode(paths)``, peak GPU memory of each method, and the fidelity of
each method to ``encode(paths)`` (lowest cosine, and whether every photo keeps its nearest neighbour).

On a GPU machine (one command)::

    python examples/benchmark_gpu.py                      # both models, 2,048 images, cuda
    python examples/benchmark_gpu.py --models clip --images 8192 --clip-batch-size 512

On a CPU (what the tests run; tiny models of the same architectures)::

    python examples/benchmark_gpu.py --tiny --device cpu --images 24
"""

from __future__ import annotations

import argparse
import glob
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

DEFAULT_IMAGES = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "images"

# ViT-B/32 (openai/clip-vit-base-patch32): CLIPConfig's defaults, 224-pixel images, patch 32.
CLIP_FULL = dict(
    text=dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8),
    vision=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12),
    image_size=224,
    patch_size=32,
    projection_dim=512,
)
CLIP_TINY = dict(
    text=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2),
    vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2),
    image_size=32,
    patch_size=8,
    projection_dim=16,
)
# Qwen3-VL-2B (Qwen/Qwen3-VL-2B-Instruct's config): 2.13 B parameters.
QWEN_FULL = dict(
    text=dict(
        hidden_size=2048,
        intermediate_size=6144,
        num_hidden_layers=28,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        mrope_section=[24, 20, 20],
    ),
    vision=dict(
        depth=24,
        hidden_size=1024,
        intermediate_size=4096,
        num_heads=16,
        out_hidden_size=2048,
        num_position_embeddings=2304,
        deepstack_visual_indexes=[5, 11, 17],
    ),
    min_pixels=64 * 32 * 32,
    max_pixels=16384 * 32 * 32,  # Qwen3-VL's own default; --max-pixels lowers it
)


def build_clip(path: Path, dims: dict[str, Any]) -> str:
    """A CLIPModel of the given sizes with random weights, its processor and a byte-level tokenizer."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    from modalbridge.testing import byte_level_vocab

    vocab = byte_level_vocab(["<|startoftext|>", "<|endoftext|>"], end_of_word_suffix="</w>")
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    size = dims["image_size"]
    image_processor = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    config = CLIPConfig(
        text_config=dict(
            dims["text"], vocab_size=len(vocab), max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1
        ),
        vision_config=dict(dims["vision"], image_size=size, patch_size=dims["patch_size"]),
        projection_dim=dims["projection_dim"],
    )
    CLIPModel(config).eval().save_pretrained(path)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    return str(path)


def build_qwen3vl_embedder(path: Path, dims: dict[str, Any] | None, device: str) -> str:
    """A Qwen3-VL embedder (Transformer + last-token pooling + normalize): the tiny test model, or with
    ``dims`` its transformer replaced by random bf16 weights of those sizes and the image processor
    given ``min_pixels`` / ``max_pixels``."""
    from modalbridge.testing import build_tiny_qwen3vl_embedder

    tiny = build_tiny_qwen3vl_embedder(path.parent / (path.name + "-tiny"))
    if dims is None:
        return tiny
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import Qwen3VLConfig, Qwen3VLModel

    model = SentenceTransformer(tiny, device="cpu")
    transformer = model[0]
    small = transformer.model.config
    text = dict(small.text_config.to_dict())
    text.update({k: v for k, v in dims["text"].items() if k != "mrope_section"})
    text["rope_parameters"] = dict(text["rope_parameters"], mrope_section=dims["text"]["mrope_section"])
    vision = dict(small.vision_config.to_dict(), **dims["vision"])
    config = Qwen3VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=small.image_token_id,
        video_token_id=small.video_token_id,
        vision_start_token_id=small.vision_start_token_id,
        vision_end_token_id=small.vision_end_token_id,
    )
    with torch.device(device):  # random init where the model will run: seconds on a GPU
        transformer.model = Qwen3VLModel(config).to(torch.bfloat16).eval()
    transformer.processor.image_processor.size = {"shortest_edge": dims["min_pixels"], "longest_edge": dims["max_pixels"]}
    model.save(str(path))
    del model, transformer
    _free_gpu()
    return str(path)


def _free_gpu() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class GpuMemory:
    """Peak GPU memory of a block (None off CUDA)."""

    def __init__(self, device: str) -> None:
        import torch

        self.cuda = device.startswith("cuda") and torch.cuda.is_available()
        self.peak_mb: float | None = None

    def __enter__(self) -> "GpuMemory":
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20


def _fidelity(vectors: np.ndarray, reference: np.ndarray) -> tuple[float, bool]:
    """Lowest cosine to the reference, and whether every item keeps its nearest neighbour."""
    a = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    b = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    sa, sb = a @ a.T, b @ b.T
    np.fill_diagonal(sa, -np.inf)
    np.fill_diagonal(sb, -np.inf)
    # Copies of the same photo are each other's nearest neighbours: compare on distinct photos only.
    return float((a * b).sum(axis=1).min()), bool((sa.argmax(1) == sb.argmax(1)).all())


def run_model(
    name: str, model_path: str, paths: list[str], device: str, dtype: str | None, batch_size: int, repeats: int,
    gpu_path: bool, workers: int,
) -> list[dict[str, Any]]:
    from modalbridge import Embedder, Image, clear_model_cache
    from modalbridge.media import decode_image

    exact = Embedder(model_path, device=device, dtype=dtype, batch_size=batch_size, decode_workers=workers)
    model = exact.model  # the very object the plain sentence-transformers rows call
    distinct = sorted(set(paths))
    decoded = [decode_image(Image(p)) for p in paths]
    items = [Image(p) for p in paths]
    methods: list[tuple[str, Callable[[], np.ndarray]]] = [
        ("sentence-transformers encode(paths)", lambda: model.encode_document(paths, batch_size=batch_size)),
        ("encode(pre-decoded images)", lambda: model.encode_document(decoded, batch_size=batch_size)),
        ("modalbridge, exact path (CPU decode)", lambda: exact.embed_documents(items)),
    ]
    if gpu_path:
        on_device = Embedder(
            model_path, device=device, dtype=dtype, batch_size=batch_size, decode_workers=workers, image_decode="gpu"
        )
        methods.append(("modalbridge, device path (GPU decode)", lambda: on_device.embed_documents(items)))

    rows, reference = [], None
    for label, function in methods:
        function()  # warm-up: kernels, allocator, thread pools
        best, vectors, peak = float("inf"), None, None
        for _ in range(repeats):
            with GpuMemory(device) as memory:
                start = time.perf_counter()
                vectors = np.asarray(function(), dtype=np.float32)
                seconds = time.perf_counter() - start
            best, peak = min(best, seconds), memory.peak_mb
        if reference is None:
            reference = vectors
        first = [paths.index(p) for p in distinct]
        cosine, same_neighbours = _fidelity(vectors[first], reference[first])
        rows.append(
            dict(model=name, method=label, images=len(paths), seconds=best, images_per_s=len(paths) / best,
                 peak_gpu_mb=peak, min_cosine=cosine, same_top1=same_neighbours)
        )
    base = rows[0]["images_per_s"]
    for row in rows:
        row["ratio"] = row["images_per_s"] / base
    clear_model_cache()
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    header = f"{'model':<22}{'method':<40}{'images/s':>10}{'ratio':>8}{'peak GPU MB':>13}{'min cos':>9}{'top-1':>7}"
    print(header)
    print("-" * len(header))
    for r in rows:
        peak = f"{r['peak_gpu_mb']:.0f}" if r["peak_gpu_mb"] is not None else "n/a"
        print(
            f"{r['model']:<22}{r['method']:<40}{r['images_per_s']:>10.1f}{r['ratio']:>7.2f}x{peak:>13}"
            f"{r['min_cosine']:>9.4f}{'same' if r['same_top1'] else 'DIFF':>7}"
        )


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images-dir", default=str(DEFAULT_IMAGES), help="folder of JPEG files")
    parser.add_argument("--images", type=int, default=2048, help="how many images (the files, repeated)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--models", default="clip,qwen", help="comma-separated: clip, qwen")
    parser.add_argument("--tiny", action="store_true", help="tiny test models instead of the real sizes (CPU runs)")
    parser.add_argument("--clip-batch-size", type=int, default=256)
    parser.add_argument("--qwen-batch-size", type=int, default=32)
    parser.add_argument("--max-pixels", type=int, default=None, help="Qwen3-VL image processor max_pixels")
    parser.add_argument("--repeats", type=int, default=1, help="best of N timed runs per method")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="decode threads (modalbridge rows)")
    parser.add_argument("--work-dir", default=None, help="where the random-weight models are written")
    args = parser.parse_args(argv)

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("no CUDA device here: pass --device cpu (and --tiny) to run on the CPU")
    files = sorted(glob.glob(os.path.join(args.images_dir, "*.jpg")) + glob.glob(os.path.join(args.images_dir, "*.jpeg")))
    if not files:
        parser.error(f"no JPEG files in {args.images_dir}")
    paths = [files[i % len(files)] for i in range(args.images)]
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="modalbridge-gpu-bench-"))
    gpu_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "no GPU"
    print(f"device: {args.device} ({gpu_name})  images: {len(paths)} ({len(files)} distinct files)  "
          f"torch {torch.__version__}  sizes: {'tiny' if args.tiny else 'real'}")

    rows: list[dict[str, Any]] = []
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = set(models) - {"clip", "qwen"}
    if unknown:
        parser.error(f"unknown models: {', '.join(sorted(unknown))}")
    if "clip" in models:
        clip = build_clip(work / "clip", CLIP_TINY if args.tiny else CLIP_FULL)
        rows += run_model(
            "CLIP " + ("tiny" if args.tiny else "ViT-B/32") + (" fp16" if not args.tiny else ""),
            clip, paths, args.device, None if args.tiny else "float16", args.clip_batch_size, args.repeats,
            gpu_path=True, workers=args.workers,
        )
    if "qwen" in models:
        dims = None if args.tiny else dict(QWEN_FULL)
        if dims is not None and args.max_pixels:
            dims["max_pixels"] = args.max_pixels
        qwen = build_qwen3vl_embedder(work / "qwen3vl", dims, args.device)
        rows += run_model(
            "Qwen3-VL " + ("tiny" if args.tiny else "2B-sized bf16"),
            qwen, paths, args.device, None if args.tiny else "bfloat16", args.qwen_batch_size, args.repeats,
            gpu_path=False, workers=args.workers,
        )
    print_rows(rows)
    print("ratio: images/s over sentence-transformers encode(paths) of the same model; min cos / top-1: fidelity to it")
    return rows


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
