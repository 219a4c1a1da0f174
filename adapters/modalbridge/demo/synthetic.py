"""Deterministic synthetic data for the offline demo models.

Three generators, each seeded and each returning ``(item, caption)`` pairs:

* pictures (:func:`generate_images`): one shape (circle, square, triangle, diamond, star, cross) of one
  color, one of two sizes, at one of five positions, on a plain light background, as a 64x64 RGB
  ``PIL.Image``; caption e.g. ``"a small red circle in the top left"``.
* sounds (:func:`generate_sounds`): a steady tone, rising or falling chirp, noise burst, pulsing beep or
  warbling tone, at a low / mid / high pitch, quiet or loud, short or long, inside a 1 s float32
  waveform at 16 kHz; caption e.g. ``"a loud short rising high-pitched chirp"``. Items are
  ``{"array": np.ndarray, "sampling_rate": 16000}`` dicts, which sentence-transformers takes as audio.
* videos (:func:`generate_videos`): a shape of one color moving in one of four directions over 8 frames,
  as a uint8 ``(T, H, W, 3)`` array; caption e.g. ``"a red circle moving left to right"``.
  :func:`write_mp4` writes frames to an mp4 file with PyAV.

Every caption determines its attribute combination and vice versa (``*_combinations()`` list them
all), so a gallery with one item per combination has unique captions. Items of one combination differ
by jitter (exact position, size, color shade, background, pitch, onset, ...) drawn from a random
generator seeded by ``(seed, index)``: an item depends only on its seed, index and spec, never on how
many items are generated, and held-out items are drawn with a different seed than the training items.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "IMAGE_SHAPES",
    "IMAGE_COLORS",
    "IMAGE_SIZES",
    "IMAGE_POSITIONS",
    "SOUND_KINDS",
    "SOUND_PITCHES",
    "SOUND_VOLUMES",
    "SOUND_LENGTHS",
    "VIDEO_DIRECTIONS",
    "SAMPLING_RATE",
    "ImageSpec",
    "SoundSpec",
    "VideoSpec",
    "image_combinations",
    "sound_combinations",
    "video_combinations",
    "sample_specs",
    "render_image",
    "render_sound",
    "render_video",
    "generate_images",
    "generate_sounds",
    "generate_videos",
    "image_neighbours",
    "sound_neighbours",
    "write_mp4",
]

# --------------------------------------------------------------------------------------------------
# Attributes
# --------------------------------------------------------------------------------------------------

IMAGE_SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "star", "cross")
IMAGE_COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 60, 220),
    "yellow": (235, 205, 20),
    "purple": (140, 40, 180),
    "orange": (250, 130, 20),
}
IMAGE_SIZES: dict[str, float] = {"small": 0.11, "large": 0.21}  # radius as a fraction of the side
IMAGE_POSITIONS: dict[str, tuple[float, float]] = {  # centre (x, y) as fractions of the side
    "top left": (0.25, 0.25),
    "top right": (0.75, 0.25),
    "bottom left": (0.25, 0.75),
    "bottom right": (0.75, 0.75),
    "center": (0.5, 0.5),
}

# kind -> (adjective before the pitch, noun); "" means no adjective
SOUND_KINDS: dict[str, tuple[str, str]] = {
    "tone": ("steady", "tone"),
    "rising chirp": ("rising", "chirp"),
    "falling chirp": ("falling", "chirp"),
    "noise burst": ("", "noise burst"),
    "pulsing beep": ("pulsing", "beep"),
    "warbling tone": ("warbling", "tone"),
}
SOUND_PITCHES: dict[str, float] = {"low": 220.0, "mid": 660.0, "high": 1980.0}  # centre frequency in Hz
SOUND_VOLUMES: dict[str, float] = {"quiet": 0.04, "loud": 0.5}  # peak amplitude
SOUND_LENGTHS: dict[str, float] = {"short": 0.3, "long": 0.8}  # seconds
SAMPLING_RATE = 16_000
SOUND_SECONDS = 1.0

VIDEO_DIRECTIONS: tuple[str, ...] = ("left to right", "right to left", "top to bottom", "bottom to top")


@dataclass(frozen=True)
class ImageSpec:
    shape: str
    color: str
    size: str
    position: str

    @property
    def caption(self) -> str:
        where = "in the center" if self.position == "center" else f"in the {self.position}"
        return f"a {self.size} {self.color} {self.shape} {where}"


@dataclass(frozen=True)
class SoundSpec:
    kind: str
    pitch: str
    volume: str
    length: str

    @property
    def caption(self) -> str:
        adjective, noun = SOUND_KINDS[self.kind]
        words = ["a", self.volume, self.length, adjective, f"{self.pitch}-pitched", noun]
        return " ".join(word for word in words if word)


@dataclass(frozen=True)
class VideoSpec:
    shape: str
    color: str
    direction: str

    @property
    def caption(self) -> str:
        return f"a {self.color} {self.shape} moving {self.direction}"


def image_combinations() -> list[ImageSpec]:
    """All 360 picture attribute combinations (6 shapes x 6 colors x 2 sizes x 5 positions)."""
    return [
        ImageSpec(shape, color, size, position)
        for shape in IMAGE_SHAPES
        for color in IMAGE_COLORS
        for size in IMAGE_SIZES
        for position in IMAGE_POSITIONS
    ]


def sound_combinations() -> list[SoundSpec]:
    """All 72 sound attribute combinations (6 kinds x 3 pitches x 2 volumes x 2 lengths)."""
    return [
        SoundSpec(kind, pitch, volume, length)
        for kind in SOUND_KINDS
        for pitch in SOUND_PITCHES
        for volume in SOUND_VOLUMES
        for length in SOUND_LENGTHS
    ]


def video_combinations() -> list[VideoSpec]:
    """All 144 video attribute combinations (6 shapes x 6 colors x 4 directions)."""
    return [VideoSpec(shape, color, direction) for shape in IMAGE_SHAPES for color in IMAGE_COLORS for direction in VIDEO_DIRECTIONS]


def _neighbours(spec, options: dict[str, Sequence[str]]) -> list:
    """Specs that differ from ``spec`` in exactly one attribute (hard negatives)."""
    out = []
    for field, values in options.items():
        for value in values:
            if value != getattr(spec, field):
                out.append(type(spec)(**{**spec.__dict__, field: value}))
    return out


def image_neighbours(spec: ImageSpec) -> list[ImageSpec]:
    """All picture specs that differ from ``spec`` in exactly one attribute."""
    return _neighbours(
        spec,
        {"shape": IMAGE_SHAPES, "color": list(IMAGE_COLORS), "size": list(IMAGE_SIZES), "position": list(IMAGE_POSITIONS)},
    )


def sound_neighbours(spec: SoundSpec) -> list[SoundSpec]:
    """All sound specs that differ from ``spec`` in exactly one attribute."""
    return _neighbours(
        spec,
        {"kind": list(SOUND_KINDS), "pitch": list(SOUND_PITCHES), "volume": list(SOUND_VOLUMES), "length": list(SOUND_LENGTHS)},
    )


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(index)])


def sample_specs(combinations: Sequence, n: int, seed: int) -> list:
    """``n`` specs drawn from ``combinations``: whole shuffled passes over all combinations (so every
    combination occurs ``n // len`` or ``n // len + 1`` times), then the order is shuffled again.
    Without replacement, hence unique captions, whenever ``n <= len(combinations)``."""
    rng = np.random.default_rng([int(seed), 7919])
    out: list = []
    while len(out) < n:
        out.extend(combinations[i] for i in rng.permutation(len(combinations)))
    out = out[:n]
    return [out[i] for i in rng.permutation(len(out))]


# --------------------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------------------

_SUPERSAMPLE = 4


def _shape_polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    if shape == "triangle":
        return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    if shape == "star":
        points = []
        for k in range(10):
            radius = r if k % 2 == 0 else r * 0.45
            angle = -math.pi / 2 + k * math.pi / 5
            points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
        return points
    if shape == "cross":
        w = r * 0.38
        return [
            (cx - w, cy - r), (cx + w, cy - r), (cx + w, cy - w), (cx + r, cy - w), (cx + r, cy + w), (cx + w, cy + w),
            (cx + w, cy + r), (cx - w, cy + r), (cx - w, cy + w), (cx - r, cy + w), (cx - r, cy - w), (cx - w, cy - w),
        ]  # fmt: skip
    return None


def _jitter_color(rgb: tuple[int, int, int], rng: np.random.Generator, amount: int = 18) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)  # type: ignore[return-value]


def _background(rng: np.random.Generator) -> tuple[int, int, int]:
    level = int(rng.integers(205, 250))
    return tuple(int(np.clip(level + rng.integers(-8, 9), 0, 255)) for _ in range(3))  # type: ignore[return-value]


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill) -> None:
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif shape == "square":
        s = r * 0.85
        draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=fill)
    else:
        draw.polygon(_shape_polygon(shape, cx, cy, r), fill=fill)


def render_image(spec: ImageSpec, rng: np.random.Generator, size: int = 64) -> Image.Image:
    """Draw one picture for ``spec`` with jitter from ``rng``."""
    big = size * _SUPERSAMPLE
    img = Image.new("RGB", (big, big), _background(rng))
    draw = ImageDraw.Draw(img)
    r = IMAGE_SIZES[spec.size] * big * float(rng.uniform(0.88, 1.12))
    fx, fy = IMAGE_POSITIONS[spec.position]
    cx = (fx + float(rng.uniform(-0.04, 0.04))) * big
    cy = (fy + float(rng.uniform(-0.04, 0.04))) * big
    _draw_shape(draw, spec.shape, cx, cy, r, _jitter_color(IMAGE_COLORS[spec.color], rng))
    return img.resize((size, size), Image.Resampling.LANCZOS)


def generate_images(
    n: int | None = None, seed: int = 0, specs: Sequence[ImageSpec] | None = None, size: int = 64
) -> list[tuple[Image.Image, str]]:
    """``(PIL image, caption)`` pairs. Pass ``specs`` to render exactly those (item ``i`` uses the random
    stream ``(seed, i)``), or ``n`` to draw ``n`` specs with :func:`sample_specs`."""
    if specs is None:
        specs = sample_specs(image_combinations(), n if n is not None else len(image_combinations()), seed)
    return [(render_image(spec, _rng(seed, i), size=size), spec.caption) for i, spec in enumerate(specs)]


# --------------------------------------------------------------------------------------------------
# Sounds
# --------------------------------------------------------------------------------------------------


def write_images(folder: str | Path, n: int, seed: int = 7) -> tuple[list[str], list[str]]:
    """Generate ``n`` pictures into ``folder`` as ``image_NN.png``; returns (paths, captions)."""
    paths, captions = [], []
    for i, (image, caption) in enumerate(generate_images(n, seed=seed)):
        path = Path(folder) / f"image_{i:02d}.png"
        image.save(path)
        paths.append(str(path))
        captions.append(caption)
    return paths, captions


def _bandpass_noise(rng: np.random.Generator, n: int, low: float, high: float, sr: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    spectrum[(freqs < low) | (freqs > high)] = 0
    out = np.fft.irfft(spectrum, n)
    return out / (np.abs(out).max() + 1e-9)


def render_sound(spec: SoundSpec, rng: np.random.Generator, sr: int = SAMPLING_RATE) -> np.ndarray:
    """Synthesize one 1 s float32 waveform for ``spec`` with jitter from ``rng``."""
    total = int(round(SOUND_SECONDS * sr))
    duration = SOUND_LENGTHS[spec.length] * float(rng.uniform(0.85, 1.15))
    n = int(duration * sr)
    onset = int(rng.integers(0, total - n + 1))
    t = np.arange(n) / sr
    f0 = SOUND_PITCHES[spec.pitch] * float(rng.uniform(0.85, 1.15))

    if spec.kind == "tone":
        phase = 2 * np.pi * f0 * t
    elif spec.kind in ("rising chirp", "falling chirp"):
        # exponential sweep over two octaves, centred on f0
        start, end = (f0 / 2, f0 * 2) if spec.kind == "rising chirp" else (f0 * 2, f0 / 2)
        k = math.log(end / start) / duration
        phase = 2 * np.pi * start * (np.exp(k * t) - 1) / k
    elif spec.kind == "pulsing beep":
        phase = 2 * np.pi * f0 * t
    elif spec.kind == "warbling tone":
        depth, rate = 0.12 * f0, float(rng.uniform(5.0, 7.0))
        phase = 2 * np.pi * f0 * t - depth / rate * np.cos(2 * np.pi * rate * t)
    elif spec.kind == "noise burst":
        phase = None
    else:
        raise ValueError(f"unknown sound kind {spec.kind!r}")

    if phase is None:
        signal = _bandpass_noise(rng, n, f0 / 1.6, f0 * 1.6, sr)
    else:
        signal = np.sin(phase) + 0.15 * np.sin(2 * phase)
        signal /= np.abs(signal).max() + 1e-9

    envelope = np.ones(n)
    ramp = min(int(0.01 * sr), n // 2)
    envelope[:ramp] = np.linspace(0, 1, ramp)
    envelope[n - ramp :] = np.linspace(1, 0, ramp)
    if spec.kind == "pulsing beep":
        rate = float(rng.uniform(7.0, 9.0))
        envelope *= (np.sin(2 * np.pi * rate * t) > 0).astype(np.float64)

    amplitude = SOUND_VOLUMES[spec.volume] * float(rng.uniform(0.8, 1.25))
    out = rng.standard_normal(total) * 0.002
    out[onset : onset + n] += amplitude * signal * envelope
    return out.astype(np.float32)


def generate_sounds(
    n: int | None = None, seed: int = 0, specs: Sequence[SoundSpec] | None = None, sr: int = SAMPLING_RATE
) -> list[tuple[dict, str]]:
    """``({"array": float32 waveform, "sampling_rate": sr}, caption)`` pairs, see :func:`generate_images`."""
    if specs is None:
        specs = sample_specs(sound_combinations(), n if n is not None else len(sound_combinations()), seed)
    return [({"array": render_sound(spec, _rng(seed, i), sr=sr), "sampling_rate": sr}, spec.caption) for i, spec in enumerate(specs)]


# --------------------------------------------------------------------------------------------------
# Videos
# --------------------------------------------------------------------------------------------------


def render_video(spec: VideoSpec, rng: np.random.Generator, size: int = 64, frames: int = 8) -> np.ndarray:
    """Render ``frames`` uint8 RGB frames ``(T, H, W, 3)`` of a shape moving in ``spec.direction``."""
    big = size * _SUPERSAMPLE
    background = _background(rng)
    fill = _jitter_color(IMAGE_COLORS[spec.color], rng)
    r = 0.14 * big * float(rng.uniform(0.9, 1.1))
    across = float(rng.uniform(0.3, 0.7)) * big  # coordinate perpendicular to the motion
    start, end = r * 1.05, big - r * 1.05
    out = np.empty((frames, size, size, 3), dtype=np.uint8)
    for f in range(frames):
        along = start + (end - start) * f / max(frames - 1, 1)
        if spec.direction in ("right to left", "bottom to top"):
            along = big - along
        cx, cy = (along, across) if spec.direction in ("left to right", "right to left") else (across, along)
        img = Image.new("RGB", (big, big), background)
        _draw_shape(ImageDraw.Draw(img), spec.shape, cx, cy, r, fill)
        out[f] = np.asarray(img.resize((size, size), Image.Resampling.LANCZOS))
    return out


def generate_videos(
    n: int | None = None, seed: int = 0, specs: Sequence[VideoSpec] | None = None, size: int = 64, frames: int = 8
) -> list[tuple[np.ndarray, str]]:
    """``(uint8 frames (T, H, W, 3), caption)`` pairs, see :func:`generate_images`."""
    if specs is None:
        specs = sample_specs(video_combinations(), n if n is not None else len(video_combinations()), seed)
    return [(render_video(spec, _rng(seed, i), size=size, frames=frames), spec.caption) for i, spec in enumerate(specs)]


def write_mp4(frames: np.ndarray, path: str | Path, fps: int = 4, codec: str = "libx264") -> Path:
    """Write uint8 ``(T, H, W, 3)`` RGB frames to an mp4 file with PyAV (even H and W for yuv420p)."""
    import av

    path = Path(path)
    frames = np.asarray(frames, dtype=np.uint8)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "veryfast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# --------------------------------------------------------------------------------------------------
# Slides: multi-page PDFs
# --------------------------------------------------------------------------------------------------

SLIDE_SIZE = (240, 300)
"""A slide page in points (and in pixels at 72 dpi): a title band, a square picture, a caption line."""
SLIDE_BAND = 30


def render_slide(spec: ImageSpec, rng: np.random.Generator, title: str, scale: int = 2) -> Image.Image:
    """One slide as an image ``scale`` times :data:`SLIDE_SIZE`: ``title`` at the top, a picture of
    ``spec`` (jitter from ``rng``) filling the middle square, its caption as a line of text below.

    The picture fills the page's central square, the part CLIP-like processors keep when they crop a
    page to a square, so the demo image model sees the picture as it was trained to."""
    from PIL import ImageFont

    width, height = (side * scale for side in SLIDE_SIZE)
    band = SLIDE_BAND * scale
    slide = Image.new("RGB", (width, height), (255, 255, 255))
    slide.paste(render_image(spec, rng, size=width), (0, band))
    draw = ImageDraw.Draw(slide)
    font = ImageFont.load_default(size=11 * scale)
    draw.text((6 * scale, band // 2), title, fill=(40, 40, 60), font=font, anchor="lm")
    draw.text((width // 2, height - band // 2), spec.caption, fill=(20, 20, 20), font=font, anchor="mm")
    return slide


def write_slide_pdf(
    path: str | Path, specs: Sequence[ImageSpec], seed: int, title: str = "slides", first_index: int = 0
) -> Path:
    """A PDF with one slide per spec (:func:`render_slide`; slide ``i`` jittered by the random stream
    ``(seed, first_index + i)``), pages :data:`SLIDE_SIZE` points. Returns the path."""
    path = Path(path)
    scale = 2
    slides = [
        render_slide(spec, _rng(seed, first_index + i), f"{title} - slide {i + 1}", scale=scale)
        for i, spec in enumerate(specs)
    ]
    slides[0].save(path, save_all=True, append_images=slides[1:], resolution=72.0 * scale)
    return path


def write_slide_decks(
    folder: str | Path, decks: int, slides_per_deck: int, seed: int
) -> list[tuple[Path, list[ImageSpec]]]:
    """``decks`` PDFs of ``slides_per_deck`` slides each under ``folder`` (``deck-01.pdf``, ...), with
    distinct pictures across all decks while there are enough combinations. Returns (path, specs) per deck."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    specs = sample_specs(image_combinations(), decks * slides_per_deck, seed)
    out = []
    for deck in range(decks):
        deck_specs = specs[deck * slides_per_deck : (deck + 1) * slides_per_deck]
        path = write_slide_pdf(
            folder / f"deck-{deck + 1:02d}.pdf", deck_specs, seed, title=f"deck {deck + 1}", first_index=deck * slides_per_deck
        )
        out.append((path, deck_specs))
    return out
