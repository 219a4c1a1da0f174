"""Explicit modalities: what needs a tag, what doesn't, and the errors for what would need guessing."""

import base64
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImageModule

from modalbridge import Audio, Combined, Image, Video, modality_of
from modalbridge.items import check_item, describe_item


def test_str_is_text_and_pil_is_image_without_tags():
    assert modality_of("https://example.com/cat.jpg") == "text"
    assert modality_of("/etc/hostname.png") == "text"
    assert modality_of(PILImageModule.new("RGB", (4, 4))) == "image"
    assert isinstance(check_item(PILImageModule.new("RGB", (4, 4))), Image)


@pytest.mark.parametrize(
    "value, described",
    [
        (np.zeros((4, 4, 3), dtype=np.uint8), "an array of shape (4, 4, 3)"),
        (b"\x89PNG", "4 bytes"),
        (BytesIO(b"x"), "a BytesIO buffer"),
        (Path("cat.jpg"), "the path 'cat.jpg'"),
    ],
)
def test_ambiguous_values_must_be_tagged(value, described):
    with pytest.raises(TypeError) as error:
        check_item(value, index=3)
    message = str(error.value)
    assert message.startswith(f"item 3: {described} is ambiguous")
    assert "modalbridge.Image(...)" in message and "Audio(" in message and "Video(" in message


def test_none_is_refused():
    with pytest.raises(TypeError, match="item 0: None is not an input"):
        check_item(None, index=0)


def test_tags_give_modalities_and_paths_become_strings():
    assert modality_of(Image(Path("a.jpg"))) == "image"
    assert Image(Path("a.jpg")).source == "a.jpg"
    assert modality_of(Audio("a.ogg")) == "audio"
    assert modality_of(Video("a.mp4")) == "video"


def test_waveform_needs_its_sampling_rate():
    with pytest.raises(TypeError, match="needs its sampling_rate"):
        Audio(np.zeros(100, dtype=np.float32))
    assert Audio(np.zeros(100, dtype=np.float32), sampling_rate=8000).sampling_rate == 8000


def test_from_base64_accepts_plain_and_data_uri_and_rejects_garbage():
    payload = base64.b64encode(b"image-bytes").decode()
    assert Image.from_base64(payload).source == b"image-bytes"
    assert Image.from_base64("data:image/png;base64," + payload).source == b"image-bytes"
    with pytest.raises(ValueError, match="not valid base64"):
        Image.from_base64("not base64!!")


def test_combined_items():
    photo = PILImageModule.new("RGB", (4, 4))
    item = Combined(text="red shoes", image=photo)
    assert modality_of(item) == ("image", "text")
    assert isinstance(item.parts["image"], Image)
    assert modality_of(Combined(text="a clip", video=Video("v.mp4"))) == ("text", "video")
    with pytest.raises(TypeError, match="at least two parts"):
        Combined(text="alone")
    with pytest.raises(TypeError, match=r"Combined\(image=...\): an array of shape \(2, 2, 3\) is ambiguous"):
        Combined(text="x", image=np.zeros((2, 2, 3)))
    with pytest.raises(TypeError, match="got a Audio, expected Image"):
        Combined(text="x", image=Audio("a.ogg"))


def test_descriptions_name_the_source():
    assert describe_item(Image("photos/cat.jpg")) == "Image(photos/cat.jpg)"
    assert describe_item("short text") == "'short text'"
    assert "data:image/png;base64,..." in describe_item(Image("data:image/png;base64,AAAA"))
