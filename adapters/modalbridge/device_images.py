"""The device image path in the core: which models take it, and feeding its ``pixel_values`` to them.

``image_decode`` (an encode setting) picks how images reach a CLIP-like model:

- ``"cpu"`` (default): the exact path, on the CPU. Vectors equal direct sentence-transformers calls.
  When the model's image processor is a transformers torchvision processor (CLIP's and SigLIP's are), its
  steps are run batched on the CPU with the same torchvision calls after a libjpeg-turbo decode
  (:mod:`modalbridge.media.gpu_image` with ``device="cpu"``): bit-identical ``pixel_values`` and less
  work per image than Pillow + the processor image by image (demo CLIP: 1.45x ``encode(paths)`` against
  1.13x). Otherwise (PIL-backend processors, ``reduced_jpeg_decode``, device pools) Pillow decodes and the
  processor runs as sentence-transformers runs it.
- ``"gpu"``: JPEGs are decoded in batches on the model's device and resized / normalized there
  (:mod:`modalbridge.media.gpu_image`); other formats are decoded by Pillow and preprocessed on the device.
  On CUDA nvJPEG and the float resize differ slightly from the exact path (README: measured fidelity).
- ``"auto"``: ``"gpu"`` when the model is on a CUDA device and its processor qualifies, else ``"cpu"``.

Only models whose first module is a sentence-transformers ``Transformer`` with an image method, no chat
template (``"message"``) and a standard image processor qualify; ``"gpu"`` on any other model is an error
that says why. Prompts never apply to images on such models, exactly as in sentence-transformers.

The model-side call is the second half of ``encode``: ``model({"pixel_values": ..., "modality": "image"})``,
then truncation and normalization as ``encode`` does them::

    from modalbridge.device_images import device_image_processor, forward_pixel_values

    processor = device_image_processor(model, "gpu")
    vectors = forward_pixel_values(model, processor(list_of_jpeg_bytes), normalize=True)
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from modalbridge.media.gpu_image import DeviceImageProcessor, UnsupportedProcessor

ImageDecode = Literal["cpu", "gpu", "auto"]
IMAGE_DECODE_MODES = ("cpu", "gpu", "auto")


def _image_processor(model: Any) -> Any:
    """The model's image processor, or a reason string why the device path does not apply."""
    try:
        from sentence_transformers.base.modules import Transformer
    except ImportError:  # pragma: no cover
        return "sentence-transformers 6 is needed"
    first = model[0] if hasattr(model, "__getitem__") and len(model) else None
    if not isinstance(first, Transformer):
        return f"its first module is {type(first).__name__}, not a sentence-transformers Transformer"
    if "image" not in first.modality_config:
        return "it takes no images"
    if "message" in first.modality_config:
        return "it renders images through a chat template (a vision-language model)"
    overrides = {k for k in ("image", "common") if (first.processing_kwargs or {}).get(k)}
    if overrides:
        return f"its Transformer module overrides processor arguments ({', '.join(sorted(overrides))})"
    processor = first.processor
    image_processor = getattr(processor, "image_processor", processor)
    try:
        DeviceImageProcessor.from_processor(image_processor)
    except UnsupportedProcessor as exc:
        return str(exc)
    return image_processor


def device_image_processor(
    model: Any, image_decode: ImageDecode, pooled: bool = False, reduced_jpeg_decode: bool = False
) -> DeviceImageProcessor | None:
    """The batched tensor path for ``model`` under ``image_decode`` (on the model's device for ``"gpu"``,
    on the CPU where it is bit-identical to the processor for ``"cpu"``), or ``None`` for Pillow and the
    model's own processor.

    Raises ``ValueError`` when ``image_decode="gpu"`` and the model does not qualify, runs in a device pool,
    or ``reduced_jpeg_decode`` is on (Pillow's reduced decode is a CPU decode; the message says why).
    ``pooled``: the model runs in a multi-process pool, whose workers run the model's own processor."""
    if image_decode not in IMAGE_DECODE_MODES:
        raise ValueError(f"image_decode must be one of {', '.join(IMAGE_DECODE_MODES)}, got {image_decode!r}")
    if image_decode == "gpu":
        if pooled:
            raise ValueError("image_decode='gpu' cannot be used with a device list: the pool's workers preprocess")
        if reduced_jpeg_decode:
            raise ValueError(
                "image_decode='gpu' decodes JPEGs at full size on the device; reduced_jpeg_decode is a CPU "
                "decode: use one or the other"
            )
    if pooled or reduced_jpeg_decode:
        return None
    found = _image_processor(model)
    if isinstance(found, str):
        if image_decode == "gpu":
            raise ValueError(f"image_decode='gpu' does not apply to this model: {found}; use 'cpu' or 'auto'")
        return None
    if image_decode == "gpu" or (image_decode == "auto" and model.device.type == "cuda"):
        return DeviceImageProcessor.from_processor(found, model.device)
    return _exact_on_cpu(found)


def _exact_on_cpu(image_processor: Any) -> DeviceImageProcessor | None:
    """The tensor path on the CPU where it is the processor's own arithmetic: a torchvision-backend
    processor runs these same torchvision calls, so ``pixel_values`` are bit-identical (tested on photos);
    a PIL-backend one resizes with Pillow, which this path would not reproduce bit for bit."""
    from transformers.image_processing_backends import TorchvisionBackend

    if not isinstance(image_processor, TorchvisionBackend):
        return None
    return DeviceImageProcessor.from_processor(image_processor, "cpu")


def image_features(pixel_values: Any) -> dict[str, Any]:
    """What ``model.preprocess(images)`` returns for a CLIP-like model, from device ``pixel_values``."""
    return {"pixel_values": pixel_values, "modality": "image"}


def forward_pixel_values(
    model: Any, pixel_values: Any, *, normalize: bool = False, truncate_dim: int | None = None
) -> np.ndarray:
    """Embeddings (float, before any quantization) of preprocessed images: ``encode``'s forward,
    truncation and normalization, in the same order."""
    import torch
    from sentence_transformers.util.tensor import _tensor_to_numpy, truncate_embeddings

    truncate = truncate_dim if truncate_dim is not None else getattr(model, "truncate_dim", None)
    model.eval()
    with torch.inference_mode():
        out = model(image_features(pixel_values.to(model.device)))
        embeddings = out["sentence_embedding"]
        if truncate is not None:
            embeddings = truncate_embeddings(embeddings, truncate)
        if normalize:
            embeddings = torch.nn.functional.normalize(embeddings, p=2, dim=1)
        return _tensor_to_numpy(embeddings.cpu())
