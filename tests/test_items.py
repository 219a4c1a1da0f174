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


def test_declared_media_is_tagged_and_everything_else_refused():
    from modalbridge.items import as_media, as_media_list

    assert as_media("image", "photo.jpg") == Image("photo.jpg")
    assert as_media("audio", Path("a.ogg")) == Audio("a.ogg")
    assert as_media("video", b"\x00\x01") == Video(b"\x00\x01")
    pil = PILImageModule.new("RGB", (2, 2))
    assert as_media("image", pil) == Image(pil)
    with pytest.raises(TypeError, match=r"expected audio but got Image\(x.jpg\)"):
        as_media("audio", Image("x.jpg"))
    with pytest.raises(TypeError, match=r"^uris 1: cannot read an int as an image: pass a path"):
        as_media_list("image", ["a.jpg", 7], "uris")
    with pytest.raises(TypeError, match="uris must be a list of video sources, got str"):
        as_media_list("video", "v.mp4", "uris")


def test_item_errors_can_be_renumbered_and_named():
    from modalbridge.items import item_error, renamed_item_error

    error = item_error(ValueError, "item", 1, "no such file")
    assert str(error) == "item 1: no such file"
    shifted = renamed_item_error(error, offset=4)
    assert type(shifted) is ValueError and str(shifted) == "item 5: no such file"
    named = renamed_item_error(error, [None, "node 'n1'"])
    assert str(named) == "item 1 (node 'n1'): no such file"
    # Renaming twice keeps the structure (batch offset, then names over the whole list).
    assert str(renamed_item_error(shifted, ["a", "b", "c", "d", "e", "id 'x'"][:6])) == "item 5 (id 'x'): no such file"
    query_error = item_error(ValueError, "query", 0, "bad")
    assert renamed_item_error(query_error, ["name"]) is query_error
    plain = RuntimeError("not about an item")
    assert renamed_item_error(plain, ["name"]) is plain
