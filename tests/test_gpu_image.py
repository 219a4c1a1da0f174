"""The device image path (image_decode="gpu"), run on CPU tensors, against the exact processor path.

On a CPU device the path makes the same torchvision calls as the model's (torchvision-backed) processor
and the same libjpeg-turbo decode as Pillow, so it must agree bit for bit on the 12 real photos; the
arithmetic CUDA's resize uses (float32, then rounded) is emulated to bound what changes on a GPU.
"""

import io

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from PIL import ImageOps
from sentence_transformers import SentenceTransformer
from transformers import CLIPImageProcessor, CLIPImageProcessorPil, Qwen2VLImageProcessor, SiglipImageProcessor

from modalbridge import Embedder, Image, calibration_ranges
from modalbridge.device_images import device_image_processor, forward_pixel_values
from modalbridge.media import MediaError, decode_image
from modalbridge.media.gpu_image import DeviceImageProcessor, UnsupportedProcessor
from modalbridge.testing import cuda_resize_arithmetic

@pytest.fixture(scope="module")
def demo_clip_path():
    from pathlib import Path

    import modalbridge

    return str(Path(modalbridge.__file__).parent / "demo" / "models" / "embedder")


@pytest.fixture(scope="module")
def photo_bytes(image_paths):
    return [open(p, "rb").read() for p in image_paths]


def _exact_pixel_values(processor, image_paths):
    return processor([decode_image(Image(p)) for p in image_paths], return_tensors="pt")["pixel_values"]


@pytest.mark.parametrize(
    "processor",
    [
        CLIPImageProcessor(),  # ViT-B/32: shortest edge 224, center crop 224, bicubic
        CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),  # the tiny models
        SiglipImageProcessor(),  # fixed 224x224 resize, no crop, mean/std 0.5
    ],
    ids=["clip-224", "clip-32", "siglip"],
)
def test_pixel_values_are_bit_identical_to_the_processor_on_the_photos(processor, image_paths, photo_bytes):
    device_processor = DeviceImageProcessor.from_processor(processor, "cpu")
    pixel_values = device_processor(photo_bytes)
    expected = _exact_pixel_values(processor, image_paths)
    assert pixel_values.dtype == expected.dtype == torch.float32
    assert pixel_values.shape == expected.shape
    assert torch.equal(pixel_values, expected)


def _cosines_and_top1(vectors, reference):
    a = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    b = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    similar_a, similar_b = a @ a.T, b @ b.T
    np.fill_diagonal(similar_a, -np.inf)
    np.fill_diagonal(similar_b, -np.inf)
    return (a * b).sum(axis=1), similar_a.argmax(axis=1), similar_b.argmax(axis=1)


_CudaResizeArithmetic = cuda_resize_arithmetic()


def test_embeddings_through_the_device_path_match_sentence_transformers(demo_clip_path, image_paths, photo_bytes):
    """The trained demo CLIP on the 12 photos: the path itself is exact on CPU; with CUDA's resize
    arithmetic every cosine stays >= 0.9999 and every photo keeps its nearest neighbour (README)."""
    model = SentenceTransformer(demo_clip_path, device="cpu")
    expected = model.encode_document(image_paths, batch_size=5)

    embedder = Embedder(demo_clip_path, device="cpu", image_decode="gpu", batch_size=5)
    ours = embedder.embed_documents([Image(p) for p in image_paths])
    cosines, top1, expected_top1 = _cosines_and_top1(ours, expected)
    assert cosines.min() >= 0.99 and (top1 == expected_top1).all()
    np.testing.assert_allclose(ours, expected, atol=1e-6)

    cuda_like = _CudaResizeArithmetic.from_processor(model[0].processor.image_processor, "cpu")
    vectors = forward_pixel_values(model, cuda_like(photo_bytes))
    cosines, top1, expected_top1 = _cosines_and_top1(vectors, expected)
    assert cosines.min() >= 0.9999
    assert (top1 == expected_top1).all()


def test_normalize_truncate_and_int8_follow_the_exact_path(demo_clip_path, image_paths):
    items = [Image(p) for p in image_paths[:6]]
    ranges = calibration_ranges(Embedder(demo_clip_path, device="cpu"), items)
    for settings in ({"normalize": True, "truncate_dim": 8}, {"precision": "int8", "quantization_ranges": ranges}):
        exact = Embedder(demo_clip_path, device="cpu", **settings).embed_documents(items)
        on_device = Embedder(demo_clip_path, device="cpu", image_decode="gpu", **settings).embed_documents(items)
        assert on_device.dtype == exact.dtype
        # int8: floats equal to ~1e-7 (the batch order differs) can land one level apart at a range edge
        np.testing.assert_allclose(on_device, exact, atol=1 if exact.dtype == np.int8 else 1e-6)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow(orientation, image_paths):
    source = PILImage.open(image_paths[0]).convert("RGB").resize((40, 24))
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    source.save(buffer, "JPEG", exif=exif.tobytes(), quality=95)
    data = buffer.getvalue()

    (decoded,) = DeviceImageProcessor.from_processor(CLIPImageProcessor(), "cpu").decode([data])
    expected = np.array(ImageOps.exif_transpose(PILImage.open(io.BytesIO(data))).convert("RGB"))
    assert torch.equal(decoded, torch.from_numpy(expected).permute(2, 0, 1))


def _encoded(image, fmt, **kwargs):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def test_other_formats_and_decoded_images_fall_back_and_match_the_exact_path(tiny_clip_path, image_paths):
    photo = PILImage.open(image_paths[1]).convert("RGB").resize((64, 48))
    rgba = photo.convert("RGBA")
    rgba.putalpha(PILImage.linear_gradient("L").resize(photo.size))
    items = [
        Image(_encoded(rgba, "PNG")),  # PNG with alpha: Pillow on the CPU
        Image(_encoded(photo, "WEBP")),
        Image(_encoded(photo.convert("L"), "JPEG")),  # grayscale JPEG: on the device
        Image(_encoded(photo.convert("CMYK"), "JPEG")),  # CMYK JPEG: Pillow converts it
        rgba,  # a decoded PIL image: the processor's own conversion (alpha over white)
        Image(np.asarray(photo)),  # an HWC array
        Image(image_paths[2]),
    ]
    exact = Embedder(tiny_clip_path, device="cpu", batch_size=4).embed_documents(items)
    device_path = Embedder(tiny_clip_path, device="cpu", batch_size=4, image_decode="gpu").embed_documents(items)
    np.testing.assert_allclose(device_path, exact, atol=1e-6)


def test_unreadable_images_are_named_and_the_rest_still_embed(tiny_clip_path, image_paths):
    truncated = open(image_paths[0], "rb").read()[:600]
    items = [Image(image_paths[0]), Image(b"not an image"), Image("/no/such/photo.jpg"), Image(truncated), Image(image_paths[1])]
    embedder = Embedder(tiny_clip_path, device="cpu", batch_size=8, image_decode="gpu")
    vectors, errors = embedder.try_embed_documents(items)
    assert sorted(vectors) == [0, 4] and sorted(errors) == [1, 2, 3]
    assert str(errors[1]).startswith("item 1: 12 bytes: cannot decode image")
    assert str(errors[2]) == "item 2: /no/such/photo.jpg: no such file"
    assert str(errors[3]).startswith("item 3: 600 bytes: cannot decode image")
    expected = SentenceTransformer(tiny_clip_path, device="cpu").encode_document([image_paths[0], image_paths[1]])
    np.testing.assert_allclose(np.stack([vectors[0], vectors[4]]), expected, atol=1e-6)
    with pytest.raises(MediaError, match=r"^item 1: 12 bytes: cannot decode image"):
        embedder.embed_documents(items[:2])


def test_which_models_take_the_device_path(tiny_clip_path, tiny_qwen3vl_path, image_paths):
    clip = SentenceTransformer(tiny_clip_path, device="cpu")
    # On the CPU, "cpu" and "auto" run a torchvision-backend processor's own calls batched (bit-identical)...
    for mode in ("cpu", "auto"):
        exact = device_image_processor(clip, mode)
        assert isinstance(exact, DeviceImageProcessor) and exact.device == "cpu"
    # ...and leave Pillow processors, reduced JPEG decoding and device pools to the processor itself.
    assert device_image_processor(clip, "cpu", reduced_jpeg_decode=True) is None
    assert device_image_processor(clip, "cpu", pooled=True) is None
    pil_clip = SentenceTransformer(tiny_clip_path, device="cpu")
    pil_clip[0].processor.image_processor = CLIPImageProcessorPil(**pil_clip[0].processor.image_processor.to_dict())
    assert device_image_processor(pil_clip, "cpu") is None
    with pytest.raises(ValueError, match="reduced_jpeg_decode is a CPU decode"):
        device_image_processor(clip, "gpu", reduced_jpeg_decode=True)
    assert isinstance(device_image_processor(clip, "gpu"), DeviceImageProcessor)
    with pytest.raises(ValueError, match="device list"):
        device_image_processor(clip, "gpu", pooled=True)
    with pytest.raises(ValueError, match="image_decode must be one of cpu, gpu, auto"):
        Embedder(tiny_clip_path, image_decode="nvjpeg")

    qwen = Embedder(tiny_qwen3vl_path, device="cpu", image_decode="gpu")
    with pytest.raises(ValueError, match="chat template"):
        qwen.embed_documents([Image(image_paths[0])])
    auto = Embedder(tiny_qwen3vl_path, device="cpu", image_decode="auto").embed_documents([Image(image_paths[0])])
    np.testing.assert_allclose(auto, qwen.model.encode_document([image_paths[0]]), atol=1e-6)
    with pytest.raises(UnsupportedProcessor, match="Qwen2VLImageProcessor has its own"):
        DeviceImageProcessor.from_processor(Qwen2VLImageProcessor())
