"""Fidelity of the device image path (``image_decode="gpu"``) to the exact path, on real photos.

Prints, for the 12 COCO photos: the largest difference of ``pixel_values`` from the processor's (CLIP
224 px), and for the trained demo CLIP the lowest / mean cosine to ``encode(paths)`` and whether every
photo keeps its nearest neighbour — for the path as it runs on this device, and with the arithmetic
CUDA's resize uses (float32, then rounded to uint8) emulated on the CPU::

    python examples/gpu_image_fidelity.py            # the README's figures
    python examples/gpu_image_fidelity.py --device cuda   # on a GPU: nvJPEG and the CUDA resize for real
"""

from __future__ import annotations

import argparse
import glob
import os
from pathlib import Path

import numpy as np

IMAGES = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "images"


def _agreement(vectors: np.ndarray, reference: np.ndarray) -> tuple[float, float, int]:
    a = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    b = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    sa, sb = a @ a.T, b @ b.T
    np.fill_diagonal(sa, -np.inf)
    np.fill_diagonal(sb, -np.inf)
    cosines = (a * b).sum(axis=1)
    return float(cosines.min()), float(cosines.mean()), int((sa.argmax(1) == sb.argmax(1)).sum())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", default=str(IMAGES))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    from sentence_transformers import SentenceTransformer
    from transformers import CLIPImageProcessor

    import modalbridge
    from modalbridge import Image
    from modalbridge.device_images import forward_pixel_values
    from modalbridge.media import decode_image
    from modalbridge.media.gpu_image import DeviceImageProcessor
    from modalbridge.testing import cuda_resize_arithmetic

    paths = sorted(glob.glob(os.path.join(args.images, "*.jpg")))
    datas = [open(p, "rb").read() for p in paths]
    variants = {"device path": DeviceImageProcessor, "CUDA resize arithmetic": cuda_resize_arithmetic()}

    processor = CLIPImageProcessor()  # ViT-B/32's: shortest edge 224, center crop, bicubic
    expected = processor([decode_image(Image(p)) for p in paths], return_tensors="pt")["pixel_values"]
    print(f"{len(paths)} photos, device {args.device}")
    for label, cls in variants.items():
        difference = (cls.from_processor(processor, args.device)(datas).cpu() - expected).abs()
        print(f"CLIP 224 px pixel_values, {label:<24} max |diff| {difference.max():.4f}  mean {difference.mean():.5f}")

    demo = str(Path(modalbridge.__file__).parent / "demo" / "models" / "embedder")
    model = SentenceTransformer(demo, device=args.device)
    reference = model.encode_document(paths)
    for label, cls in variants.items():
        device_processor = cls.from_processor(model[0].processor.image_processor, args.device)
        vectors = forward_pixel_values(model, device_processor(datas))
        low, mean, same = _agreement(vectors, reference)
        print(f"demo CLIP embeddings, {label:<24} cosine min {low:.6f}  mean {mean:.6f}  same nearest {same}/{len(paths)}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
