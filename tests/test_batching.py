"""Length-aware batching for vision-language models: visual-token counts from image headers agree with
what the model's own processor produces, and ordering by them keeps results equal and in input order."""

import io

import numpy as np
import pytest
from PIL import Image as PILImage
from sentence_transformers import SentenceTransformer

from modalbridge import Image
from modalbridge.batching import image_size, order_by_cost, pixel_budget, visual_token_counter


@pytest.fixture(scope="module")
def qwen(tiny_qwen3vl_path):
    return SentenceTransformer(tiny_qwen3vl_path, device="cpu")


def _sized_images(image_paths):
    """Photos cut to sizes that give 1 to 4 visual tokens on the tiny Qwen3-VL (32-pixel units, 64x64 max),
    as every kind of source."""
    photo = PILImage.open(image_paths[0]).convert("RGB")
    sizes = [(20, 20), (64, 64), (40, 90), (200, 30), (33, 70), (64, 32)]
    images = [photo.resize(size) for size in sizes]
    buffer = io.BytesIO()
    images[1].save(buffer, "PNG")
    return [
        Image(image_paths[3]),  # a 640x427 file: capped at max_pixels
        Image(images[0]),
        Image(buffer.getvalue()),
        Image(np.array(images[2])),  # HWC array
        images[3],  # a bare PIL image
        Image(np.ascontiguousarray(np.asarray(images[4]).transpose(2, 0, 1))),  # CHW array
        Image(images[5]),
    ]


def test_visual_tokens_from_headers_equal_the_processors_count(qwen, image_paths):
    image_processor = qwen[0].processor.image_processor
    count = visual_token_counter(qwen)
    factor, min_pixels, max_pixels = pixel_budget(image_processor)
    assert (factor, min_pixels, max_pixels) == (32, 32 * 32, 64 * 64)
    from modalbridge.media import decode_image

    counts = []
    for item in _sized_images(image_paths):
        item = item if isinstance(item, Image) else Image(item)
        grid = image_processor(images=[decode_image(item)], return_tensors="pt")["image_grid_thw"][0]
        expected = int(grid.prod()) // image_processor.merge_size**2
        assert count(item) == expected
        counts.append(expected)
    assert len(set(counts)) > 1  # the sizes really differ


def test_sizes_come_from_headers_and_unknown_sizes_count_zero(qwen, image_paths):
    assert image_size(Image(image_paths[0])) == (422, 640)
    assert image_size(Image(open(image_paths[2], "rb").read())) == (640, 480)
    assert image_size(Image("https://example.com/cat.jpg")) is None  # never fetched to be sized
    assert visual_token_counter(qwen)(Image(b"not an image")) == 0


def test_fixed_size_processors_have_no_counter(tiny_clip_path):
    assert visual_token_counter(SentenceTransformer(tiny_clip_path, device="cpu")) is None


def test_order_is_by_cost_then_input_order():
    assert order_by_cost([1, 4, 2, 4, 1]) == [1, 3, 2, 0, 4]
    assert order_by_cost([]) == []


def test_the_stream_batches_like_sized_images_and_keeps_results_equal_and_in_order(tiny_qwen3vl_path, qwen, image_paths):
    from modalbridge import Embedder
    from modalbridge.media import decode_image

    items = _sized_images(image_paths) * 2
    expected = np.stack(
        [qwen.encode_document([decode_image(i if isinstance(i, Image) else Image(i))])[0] for i in items]
    )
    embedder = Embedder(tiny_qwen3vl_path, device="cpu", batch_size=3)
    model = embedder.model
    image_pad = model[0].processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    batches, forward = [], model.forward

    def recording_forward(features, **kwargs):  # records what each batch holds, then runs the model
        batches.append((features["input_ids"] == image_pad).sum(dim=1).tolist())
        return forward(features, **kwargs)

    model.forward = recording_forward
    try:
        vectors = embedder.embed_documents(items)
    finally:
        del model.forward
    np.testing.assert_allclose(vectors, expected, atol=1e-5)  # equal, and in input order
    count = visual_token_counter(model)
    costs = sorted((count(i if isinstance(i, Image) else Image(i)) for i in items), reverse=True)
    # Batches are cut from the window sorted by visual tokens (and run in order of their first item).
    assert sorted(batches, reverse=True) == [costs[i : i + 3] for i in range(0, len(costs), 3)]


def test_max_pixels_caps_the_visual_tokens_and_refuses_models_without_a_budget(tiny_qwen3vl_path, tiny_clip_path, image_paths):
    from modalbridge import Embedder

    from modalbridge.media import decode_image

    photo = Image(image_paths[0])  # 640x422: 2 tokens at the tiny model's own cap (64x64 pixels), 1 at 2048
    capped = Embedder(tiny_qwen3vl_path, device="cpu", max_pixels=32 * 32 * 2)
    direct = SentenceTransformer(tiny_qwen3vl_path, device="cpu", processor_kwargs={"max_pixels": 32 * 32 * 2})
    np.testing.assert_allclose(capped.embed_documents([photo]), direct.encode_document([image_paths[0]]), atol=1e-5)
    image_processor = capped.model[0].processor.image_processor
    grid = image_processor(images=[decode_image(photo)], return_tensors="pt")["image_grid_thw"][0]
    assert visual_token_counter(capped.model)(photo) == int(grid.prod()) // 4 == 1
    assert visual_token_counter(Embedder(tiny_qwen3vl_path, device="cpu").model)(photo) == 2
    assert capped.load_settings.key("embedder") != Embedder(tiny_qwen3vl_path, device="cpu").load_settings.key("embedder")

    with pytest.raises(ValueError, match="max_pixels applies to vision-language models .* CLIPImageProcessor"):
        Embedder(tiny_clip_path, device="cpu", max_pixels=1024).model
    with pytest.raises(ValueError, match="max_pixels must be at least the model's minimum of 1024 pixels, got 1000"):
        Embedder(tiny_qwen3vl_path, device="cpu", max_pixels=1000).model
    with pytest.raises(ValueError, match="max_pixels must be a positive integer or None, got 0"):
        Embedder(tiny_qwen3vl_path, max_pixels=0)
