"""The results page in a real headless Chromium: every picture loads and shows the right thing.

A folder of coloured shapes (the demo's synthetic generator), a sound and a video is indexed and
searched with ``--html``. Chromium loads the page twice from ``file://``: once with a small script that
writes, for every ``<img>``, ``complete && naturalWidth > 0`` and its box, and for every player its
``readyState``, into the DOM (``--dump-dom``); once for a screenshot. The screenshot is then cropped
at each thumbnail's box: each must show its own shape's colour.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from modalbridge.cli import main
from modalbridge.demo import synthetic
from modalbridge.cli.indexing import file_id

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WINDOW = (1200, 1400)
SHAPES = {  # file name -> (spec, colour)
    "red-circle.png": (synthetic.ImageSpec("circle", "red", "large", "center"), "red"),
    "blue-square.png": (synthetic.ImageSpec("square", "blue", "large", "center"), "blue"),
    "yellow-star.png": (synthetic.ImageSpec("star", "yellow", "large", "center"), "yellow"),
    "purple-diamond.png": (synthetic.ImageSpec("diamond", "purple", "large", "center"), "purple"),
}

PROBE = """
<script>
function mark() {
  document.querySelectorAll('img').forEach(function (img) {
    img.setAttribute('data-loaded', String(img.complete && img.naturalWidth > 0));
    var r = img.getBoundingClientRect();
    img.setAttribute('data-box', [r.left, r.top, r.width, r.height].map(Math.round).join(','));
    var card = img.closest('.hit');
    img.setAttribute('data-card', card ? card.getAttribute('data-path') : '');
  });
  document.querySelectorAll('audio, video').forEach(function (m) {
    m.setAttribute('data-ready', String(m.readyState));
    m.setAttribute('data-error', m.error ? String(m.error.code) : '');
  });
}
document.querySelectorAll('audio, video').forEach(function (m) {
  ['loadedmetadata', 'loadeddata', 'error'].forEach(function (e) { m.addEventListener(e, mark); });
});
window.addEventListener('load', mark);
setTimeout(mark, 500);
</script>
"""


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
        "--force-device-scale-factor=1", f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
        *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("img", "audio", "video", "div"):
            self.elements.append((tag, {k: v or "" for k, v in attrs}))


@pytest.fixture(scope="module")
def page(tmp_path_factory, tiny_clip_path, tiny_clap_path) -> Path:
    """A results page for a text query over the shapes, a sound and a video."""
    # A missing browser is a broken set-up (.ci/setup installs chromium), never a reason to skip.
    assert os.path.exists(CHROMIUM), f"chromium not found at {CHROMIUM}: run .ci/setup (it installs chromium)"
    root = tmp_path_factory.mktemp("html_page")
    media = root / "media"
    media.mkdir()
    for index, (name, (spec, _)) in enumerate(SHAPES.items()):
        synthetic.generate_images(specs=[spec], seed=index)[0][0].save(media / name)
    import soundfile as sf

    sound, _caption = synthetic.generate_sounds(specs=[synthetic.SoundSpec("tone", "mid", "loud", "long")])[0]
    sf.write(str(media / "tone.wav"), sound["array"], sound["sampling_rate"])
    frames, _caption = synthetic.generate_videos(specs=[synthetic.VideoSpec("circle", "green", "left to right")])[0]
    synthetic.write_mp4(frames, media / "moving.mp4")
    db = root / "db"
    code = main(["index", str(media), "--db", str(db), "--model", tiny_clip_path, "--audio-model", tiny_clap_path, "-q"])
    assert code == 0
    out = root / "out" / "results.html"
    assert main(["search", "a shape", "--db", str(db), "-k", "10", "--html", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def dom(page, tmp_path_factory) -> list[tuple[str, dict[str, str]]]:
    probed = page.with_name("probed.html")
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    done = _chromium(["--virtual-time-budget=5000", "--dump-dom", probed.as_uri()], tmp_path_factory.mktemp("profile"))
    assert done.returncode == 0, done.stderr[-2000:]
    parser = _Elements()
    parser.feed(done.stdout)
    return parser.elements


@pytest.fixture(scope="module")
def screenshot(page, tmp_path_factory) -> np.ndarray:
    png = page.with_name("screenshot.png")
    done = _chromium([f"--screenshot={png}", page.as_uri()], tmp_path_factory.mktemp("profile"))
    assert done.returncode == 0 and png.exists(), done.stderr[-2000:]
    return np.asarray(PILImage.open(png).convert("RGB")).astype(int)


def test_the_page_is_self_contained(page):
    text = page.read_text(encoding="utf-8")
    assert 'src="data:image/png;base64,' in text
    assert '<audio controls preload="metadata" src="data:audio/wav;base64,' in text
    assert '<video controls muted loop playsinline preload="metadata" src="data:video/mp4;base64,' in text
    assert "file://" not in text and "http://" not in text and "https://" not in text


def test_every_image_and_player_loads(dom, page):
    images = [attrs for tag, attrs in dom if tag == "img"]
    cards = [attrs for tag, attrs in dom if tag == "div" and "hit" in attrs.get("class", "").split()]
    assert len(cards) == 6  # 4 shapes and the video (main collection), the sound (audio collection)
    assert {c["data-modality"] for c in cards} == {"image", "audio", "video"}
    assert images and all(attrs["data-loaded"] == "true" for attrs in images), images
    thumbs = {attrs["data-card"] for attrs in images if "thumb" in attrs.get("class", "")}
    assert thumbs == {file_id(page.parent.parent / "media" / name) for name in SHAPES}
    assert any("wave" in attrs.get("class", "") for attrs in images)  # the sound's waveform drawing
    assert any("strip" in attrs.get("class", "") for attrs in images)  # the video's frames
    players = [(tag, attrs) for tag, attrs in dom if tag in ("audio", "video")]
    assert sorted(tag for tag, _ in players) == ["audio", "video"]
    for tag, attrs in players:  # HAVE_METADATA or better, and no MediaError: the data: URIs play
        assert attrs["data-error"] == "" and int(attrs["data-ready"]) >= 1, (tag, attrs)


def test_the_screenshot_shows_each_shape_in_its_card(dom, screenshot):
    for tag, attrs in dom:
        if tag != "img" or "thumb" not in attrs.get("class", "") or not attrs.get("data-card"):
            continue
        name = os.path.basename(attrs["data-card"])
        _, colour = SHAPES[name]
        left, top, width, height = (int(v) for v in attrs["data-box"].split(","))
        assert top + height <= screenshot.shape[0], "the thumbnail is outside the screenshot"
        crop = screenshot[top : top + height, left : left + width].reshape(-1, 3)
        target = np.array(synthetic.IMAGE_COLORS[colour])
        close = (np.abs(crop - target).max(axis=1) < 45).mean()
        assert close > 0.03, f"{name}: only {close:.1%} of its thumbnail is {colour}"
        for other, rgb in synthetic.IMAGE_COLORS.items():  # and no other shape's colour
            if other != colour:
                assert (np.abs(crop - np.array(rgb)).max(axis=1) < 30).mean() < 0.01, f"{name} shows {other}"
