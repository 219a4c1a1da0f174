"""Property-based tests (hypothesis) of input validation: for generated inputs, each check accepts
exactly what an independent predicate written here says is valid, and a rejection names the reason.
Few examples and no deadlines: the point is the variety of inputs, not the time each takes."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from modalbridge import Embedder, Image, MediaError
from modalbridge.inputs import text_problem
from modalbridge.media import check_image_array, check_sampling_rate, classify_address
from modalbridge.media.checks import check_frames

FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODEL_RUNS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

DTYPES = st.sampled_from([np.uint8, np.int16, np.float16, np.float32, np.float64, np.complex64, np.bool_])
SHAPES = hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5)


def _valid_image(array: np.ndarray) -> bool:
    """Independent statement of a valid image array: 3-D, numbers, no empty axis, 1/3/4 channels first or
    last, every value finite."""
    if array.ndim != 3 or array.dtype.kind not in "uif" or 0 in array.shape:
        return False
    if array.shape[-1] not in (1, 3, 4) and array.shape[0] not in (1, 3, 4):
        return False
    return bool(np.isfinite(array.astype(np.float64)).all()) if array.dtype.kind == "f" else True


@FEW
@given(hnp.arrays(DTYPES, SHAPES, elements=None))
def test_image_arrays_are_accepted_exactly_when_valid(array):
    if _valid_image(array):
        check_image_array(array, "x")
    else:
        with pytest.raises(MediaError, match=r"^x: "):
            check_image_array(array, "x")


@FEW
@given(hnp.arrays(DTYPES, hnp.array_shapes(min_dims=4, max_dims=4, min_side=0, max_side=4), elements=None))
def test_video_frames_are_accepted_exactly_when_valid(frames):
    valid = frames.shape[0] >= 2 and _valid_image(frames[0])  # each frame (H, W, C) or (C, H, W)
    valid = valid and (frames.dtype.kind != "f" or bool(np.isfinite(frames.astype(np.float64)).all()))
    if valid:
        check_frames(frames, "v")
    else:
        with pytest.raises(MediaError, match=r"^v: "):
            check_frames(frames, "v")


@FEW
@given(st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.text(max_size=3)))
def test_sampling_rates_are_positive_whole_numbers(rate):
    valid = (
        not isinstance(rate, (bool, str))
        and np.isfinite(rate)
        and rate > 0
        and float(rate).is_integer()
    )
    if valid:
        assert check_sampling_rate(rate, "a") == int(rate)
    else:
        with pytest.raises(MediaError, match=r"^a: sampling_rate must be a positive integer"):
            check_sampling_rate(rate, "a")


@FEW
@given(st.text(max_size=40), st.integers(0, 40), st.integers(0xD800, 0xDFFF))
def test_text_with_a_lone_surrogate_is_refused_at_its_position(text, position, surrogate):
    assert text_problem(text) is None  # hypothesis text() is valid Unicode
    position = min(position, len(text))
    broken = text[:position] + chr(surrogate) + text[position:]
    problem = text_problem(broken)
    assert problem.startswith(f"the text holds a lone surrogate {chr(surrogate)!r} at position {position}")


@FEW
@given(st.integers(0, 2**32 - 1))
def test_ipv4_classes_and_their_ipv6_mapped_forms_agree(value):
    address = ipaddress.IPv4Address(value)
    kind = classify_address(str(address))
    assert classify_address(f"::ffff:{address}") == kind
    first = value >> 24
    if first == 127:
        assert kind == "loopback"
    elif first == 10 or (value >> 20) == (172 << 4 | 1) or (value >> 16) == (192 << 8 | 168):
        assert kind == "private"
    elif (value >> 16) == (169 << 8 | 254):
        assert kind == "link-local"
    elif 224 <= first <= 239:
        assert kind == "multicast"
    if kind == "public":
        assert address.is_global and not address.is_multicast


@MODEL_RUNS
@given(
    st.lists(hnp.arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12), st.just(3))), min_size=1, max_size=4),
    st.data(),
)
def test_one_non_finite_image_fails_alone_and_by_index(tiny_clip_path, images, data):
    embedder = Embedder(tiny_clip_path)
    bad = data.draw(st.integers(0, len(images)), label="position of the bad image")
    poison = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]), label="value")
    items = [Image(image) for image in images]
    broken = np.zeros((6, 6, 3), dtype=np.float32)
    broken[data.draw(st.integers(0, 5)), data.draw(st.integers(0, 5)), 0] = poison
    items.insert(bad, Image(broken))
    vectors, errors = embedder.try_embed_documents(items)
    assert list(errors) == [bad]
    assert str(errors[bad]).startswith(f"item {bad}: an array of shape (6, 6, 3): the image array holds 1 non-finite")
    good = [i for i in range(len(items)) if i != bad]
    alone = embedder.model.encode_document([image for image in images])  # direct sentence-transformers call
    np.testing.assert_allclose(np.stack([vectors[i] for i in good]), alone, atol=1e-5)
