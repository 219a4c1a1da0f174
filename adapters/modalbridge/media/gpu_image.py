"""Images decoded and preprocessed on the model's device, for CLIP-like image processors.

On a GPU the exact image path (Pillow decode, then the processor on the CPU) feeds a ViT-B/32-sized model
at a few hundred images a second while the model could take thousands. This path reads the file bytes
on the CPU and does the rest on the device: batched JPEG decoding (``torchvision.io.decode_jpeg`` with a
list, nvJPEG on CUDA), then the processor's own resize (antialiased), center crop, rescale and normalize
with the same torchvision calls and the settings read from the model's processor::

    from modalbridge.media.gpu_image import DeviceImageProcessor, read_image_bytes

    device_processor = DeviceImageProcessor.from_processor(model[0].processor.image_processor, "cuda")
    datas = [read_image_bytes(Image(p)) for p in paths]             # bytes, in worker threads
    pixel_values = device_processor(datas)                          # (N, 3, 224, 224) float32 on cuda
    features = {"pixel_values": pixel_values, "modality": "image"}  # what model.preprocess(images) gives

What is mirrored: EXIF orientation (as ``PIL.ImageOps.exif_transpose``), RGB conversion, the resize size
rule (``shortest_edge`` or fixed ``height``/``width``), interpolation, center crop (with its padding), and
the fused rescale + normalize. Only processors that run the standard pipeline qualify
(:func:`DeviceImageProcessor.from_processor` says why others do not). Other formats (PNG, WebP, CMYK
JPEGs, anything the device decoder refuses) are decoded with Pillow on the CPU and then take the same
device steps; already decoded images (PIL, arrays) go through the processor's own ``process_image``.

Fidelity: on a CPU device the decode (libjpeg-turbo in both Pillow and torchvision) and every step are
the same calls as the processor's, so ``pixel_values`` are bit-identical to the exact path (tested on the
12 COCO photos). On CUDA nvJPEG's IDCT and chroma upsampling and the float resize differ slightly;
the README gives the numbers measured so far.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any, Sequence

from modalbridge.items import Image
from modalbridge.media.common import MediaError, _read_source, map_parallel

JPEG_SIGNATURE = b"\xff\xd8\xff"

# PIL.ImageOps.exif_transpose's table, as tensor operations on (C, H, W).
_ORIENTATIONS = {
    2: lambda t: t.flip(-1),  # mirror left-right
    3: lambda t: t.flip(-1, -2),  # rotate 180
    4: lambda t: t.flip(-2),  # mirror top-bottom
    5: lambda t: t.transpose(-1, -2),  # transpose
    6: lambda t: t.transpose(-1, -2).flip(-1),  # rotate 90 clockwise
    7: lambda t: t.transpose(-1, -2).flip(-1, -2),  # transverse
    8: lambda t: t.transpose(-1, -2).flip(-2),  # rotate 90 counter-clockwise
}


class UnsupportedProcessor(ValueError):
    """The model's image processor does something this path does not mirror (it says what)."""


def read_image_bytes(item: Image, allow_fetch: bool = False, fetch_policy: Any = None) -> Any:
    """The encoded bytes of a file, bytes, base64 or (allowed) URL source; decoded sources (PIL images,
    arrays, tensors) are checked as the exact path checks them and returned as they are."""
    from modalbridge.media.image import decode_image
    from modalbridge.media.pdf import is_pdf_page

    source = item.source
    if hasattr(source, "shape") or type(source).__module__.startswith("PIL."):
        return decode_image(item)
    if is_pdf_page(item) or (isinstance(source, str) and source.lower().endswith(".pdf") and "://" not in source):
        return decode_image(item)  # a rendered page, or the exact path's "address one page" error
    data = _read_source(item, allow_fetch, fetch_policy)
    if isinstance(data, str):  # a local path
        try:
            with open(data, "rb") as file:
                return file.read()
        except OSError as exc:
            raise MediaError(f"{item.describe()}: cannot read file ({exc})") from None
    return data


def _standard_backends() -> tuple[type, ...]:
    try:
        from transformers.image_processing_backends import PilBackend, TorchvisionBackend
    except ImportError:  # pragma: no cover - transformers < 5
        return ()
    return (TorchvisionBackend, PilBackend)


@dataclass(frozen=True)
class DeviceImageProcessor:
    """The resize / crop / rescale / normalize steps of one image processor, run with torch on ``device``.

    Build it with :meth:`from_processor`; call it with a list of encoded images (bytes) or decoded ones.
    """

    processor: Any = field(repr=False)
    device: str
    do_convert_rgb: bool
    do_resize: bool
    size: Any  # transformers SizeDict: shortest_edge, or height and width
    interpolation: Any  # torchvision InterpolationMode
    do_center_crop: bool
    crop_size: Any
    do_rescale: bool
    rescale_factor: float
    do_normalize: bool
    image_mean: tuple[float, ...] | None
    image_std: tuple[float, ...] | None

    @classmethod
    def from_processor(cls, image_processor: Any, device: Any = "cpu") -> "DeviceImageProcessor":
        """Read the processor's settings exactly as its ``preprocess`` does. Raises
        :class:`UnsupportedProcessor` for processors with their own pipeline (Qwen-VL patching, SigLIP2
        variable resolution, padding, ...), whose output this path would not reproduce."""
        backends = _standard_backends()
        name = type(image_processor).__name__
        if not backends or not isinstance(image_processor, backends):
            raise UnsupportedProcessor(f"{name} is not a transformers 5 torchvision or PIL image processor")
        own_pipeline = [
            method
            for method in ("_preprocess", "_preprocess_image_like_inputs", "_prepare_image_like_inputs", "resize")
            if getattr(type(image_processor), method) is not getattr(backends[0], method)
            and getattr(type(image_processor), method) is not getattr(backends[1], method)
        ]
        if own_pipeline:
            raise UnsupportedProcessor(f"{name} has its own {', '.join(own_pipeline)}; only the standard pipeline is mirrored")
        kwargs = {k: getattr(image_processor, k, None) for k in image_processor._valid_kwargs_names}
        kwargs = image_processor._standardize_kwargs(**kwargs)
        if kwargs.get("do_pad"):
            raise UnsupportedProcessor(f"{name} pads images (do_pad); not mirrored")
        size = kwargs.get("size")
        do_resize = bool(kwargs.get("do_resize"))
        if do_resize and not (size.shortest_edge and not size.longest_edge) and not (size.height and size.width):
            raise UnsupportedProcessor(f"{name} resizes with {dict(size)}; only shortest_edge or height/width is mirrored")
        do_center_crop = bool(kwargs.get("do_center_crop"))
        if not do_center_crop and not (do_resize and size.height and size.width):
            raise UnsupportedProcessor(f"{name} gives images of varying size (no center crop, no fixed resize)")

        from transformers.image_utils import pil_torch_interpolation_mapping
        from torchvision.transforms.v2 import InterpolationMode

        resample = kwargs.get("resample")
        if resample is None:
            interpolation = InterpolationMode.BILINEAR
        elif isinstance(resample, InterpolationMode):
            interpolation = resample
        else:
            interpolation = pil_torch_interpolation_mapping[resample]
        if interpolation == InterpolationMode.LANCZOS:
            raise UnsupportedProcessor(f"{name} resizes with LANCZOS, which torchvision runs on CPU only")

        def floats(value: Any) -> tuple[float, ...] | None:
            if value is None:
                return None
            return tuple(float(v) for v in (value if isinstance(value, (list, tuple)) else [value] * 3))

        return cls(
            processor=image_processor,
            device=str(device),
            do_convert_rgb=bool(kwargs.get("do_convert_rgb")),
            do_resize=do_resize,
            size=size,
            interpolation=interpolation,
            do_center_crop=do_center_crop,
            crop_size=kwargs.get("crop_size"),
            do_rescale=bool(kwargs.get("do_rescale")),
            rescale_factor=float(kwargs.get("rescale_factor") or 1.0),
            do_normalize=bool(kwargs.get("do_normalize")),
            image_mean=floats(kwargs.get("image_mean")),
            image_std=floats(kwargs.get("image_std")),
        )

    # -- decoding -------------------------------------------------------------------------------------

    def decode(self, images: Sequence[Any], names: Sequence[str] | None = None, workers: int = 1) -> list[Any]:
        """uint8 (3, H, W) tensors on the device, EXIF-oriented, in input order. ``images`` holds encoded
        bytes or decoded images; ``names`` (e.g. ``"item 3: /x.jpg"``) label failures. A JPEG the device
        decoder refuses falls back to Pillow; an image nothing can decode raises :class:`MediaError`."""
        import torch

        names = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
        out: list[Any] = [None] * len(images)
        jpegs: list[tuple[int, int]] = []  # (position, EXIF orientation)
        others: list[int] = []
        for position, data in enumerate(images):
            if isinstance(data, (bytes, bytearray)) and bytes(data[:3]) == JPEG_SIGNATURE:
                header = _jpeg_header(data)
                if header is not None and header[0] in ("RGB", "L"):  # CMYK and YCCK: Pillow converts them
                    jpegs.append((position, header[1]))
                    continue
            others.append(position)

        if jpegs:
            decoded = self._decode_jpegs([images[p] for p, _ in jpegs], workers)
            for (position, orientation), tensor in zip(jpegs, decoded):
                if tensor is None:
                    others.append(position)
                    continue
                out[position] = _ORIENTATIONS[orientation](tensor) if orientation in _ORIENTATIONS else tensor

        def on_cpu(position: int) -> Any:
            data = images[position]
            if isinstance(data, (bytes, bytearray)):
                data = _pil_decode(bytes(data), names[position])
            array = self.processor.process_image(data, do_convert_rgb=self.do_convert_rgb)
            tensor = array if isinstance(array, torch.Tensor) else torch.from_numpy(array)
            return tensor.to(self.device, non_blocking=True)

        for position, tensor in zip(others, map_parallel(on_cpu, others, workers)):
            out[position] = tensor
        return out

    def _decode_jpegs(self, datas: list[bytes], workers: int) -> list[Any]:
        """One batched device decode; if the batch fails, each image alone (``None`` where it fails)."""
        import torch
        from torchvision.io import ImageReadMode, decode_jpeg

        tensors = [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in datas]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*decoding and encoding capabilities of TorchVision.*")
            if self.device.startswith("cuda"):
                try:
                    return list(decode_jpeg(tensors, mode=ImageReadMode.RGB, device=self.device))
                except RuntimeError:  # the batch call returns nothing if one image fails: find it
                    pass

            def one(tensor: Any) -> Any:
                try:
                    return decode_jpeg(tensor, mode=ImageReadMode.RGB, device=self.device)
                except RuntimeError:
                    return None

            return map_parallel(one, tensors, workers)

    # -- preprocessing --------------------------------------------------------------------------------

    def preprocess(self, images: Sequence[Any]) -> Any:
        """``pixel_values`` (N, 3, H, W) float32 on the device from uint8 (3, H, W) tensors: the
        processor's ``_preprocess`` (grouped by shape, resized, cropped, rescaled and normalized)."""
        import torch
        import torchvision.transforms.v2.functional as tvF

        if not images:
            raise ValueError("no images to preprocess")
        resized = list(images)
        if self.do_resize:
            for shape, positions in _group_by_shape(resized).items():
                stacked = torch.stack([resized[p] for p in positions])
                stacked = tvF.resize(stacked, self._output_size(shape), interpolation=self.interpolation, antialias=True)
                for position, image in zip(positions, stacked):
                    resized[position] = image
        processed: list[Any] = [None] * len(resized)
        for shape, positions in _group_by_shape(resized).items():
            stacked = torch.stack([resized[p] for p in positions])
            if self.do_center_crop:
                stacked = self._center_crop(stacked)
            stacked = self._rescale_and_normalize(stacked)
            for position, image in zip(positions, stacked):
                processed[position] = image
        return torch.stack(processed)

    def __call__(self, images: Sequence[Any], names: Sequence[str] | None = None, workers: int = 1) -> Any:
        """Encoded or decoded images to ``pixel_values`` on the device (see :meth:`decode`)."""
        return self.preprocess(self.decode(images, names, workers))

    def _output_size(self, shape: tuple[int, int]) -> list[int]:
        size = self.size
        if size.shortest_edge:  # transformers' get_resize_output_image_size(default_to_square=False)
            height, width = shape
            short, long = (width, height) if width <= height else (height, width)
            new_short, new_long = size.shortest_edge, int(size.shortest_edge * long / short)
            return [new_long, new_short] if width <= height else [new_short, new_long]
        return [size.height, size.width]

    def _center_crop(self, images: Any) -> Any:
        """TorchvisionBackend.center_crop: pad when the crop is larger, then ``int((size - crop) / 2)``."""
        import torchvision.transforms.v2.functional as tvF

        height, width = images.shape[-2:]
        crop_height, crop_width = self.crop_size.height, self.crop_size.width
        if crop_width > width or crop_height > height:
            padding = [
                (crop_width - width) // 2 if crop_width > width else 0,
                (crop_height - height) // 2 if crop_height > height else 0,
                (crop_width - width + 1) // 2 if crop_width > width else 0,
                (crop_height - height + 1) // 2 if crop_height > height else 0,
            ]
            images = tvF.pad(images, padding, fill=0)
            height, width = images.shape[-2:]
            if (crop_height, crop_width) == (height, width):
                return images
        top, left = int((height - crop_height) / 2.0), int((width - crop_width) / 2.0)
        return tvF.crop(images, top, left, crop_height, crop_width)

    def _rescale_and_normalize(self, images: Any) -> Any:
        """TorchvisionBackend.rescale_and_normalize: rescale folded into mean and std when both apply."""
        import torch
        import torchvision.transforms.v2.functional as tvF

        if self.do_normalize:
            mean = torch.tensor(self.image_mean, device=images.device)
            std = torch.tensor(self.image_std, device=images.device)
            if self.do_rescale:
                mean, std = mean * (1.0 / self.rescale_factor), std * (1.0 / self.rescale_factor)
            return tvF.normalize(images.to(torch.float32), mean, std)
        images = images.to(torch.float32)
        return images * self.rescale_factor if self.do_rescale else images


def _group_by_shape(images: Sequence[Any]) -> dict[tuple[int, int], list[int]]:
    groups: dict[tuple[int, int], list[int]] = {}
    for position, image in enumerate(images):
        groups.setdefault(tuple(image.shape[-2:]), []).append(position)
    return groups


def _jpeg_header(data: bytes) -> tuple[str, int] | None:
    """(mode, EXIF orientation) from the header alone (Pillow reads no pixels here), or None."""
    from PIL import Image as PILImage

    try:
        with PILImage.open(BytesIO(data)) as image:
            return image.mode, int(image.getexif().get(0x0112, 1) or 1)
    except Exception:
        return None


def _pil_decode(data: bytes, name: str) -> Any:
    """The exact path's decode (:func:`modalbridge.media.image.decode_image`): EXIF orientation, then
    8-bit RGB (high-bit-depth and palette images as it converts them)."""
    from PIL import Image as PILImage
    from PIL import ImageOps

    from modalbridge.media.image import to_rgb

    buffer = BytesIO(data)
    try:
        with PILImage.open(buffer) as image:
            return to_rgb(ImageOps.exif_transpose(image))
    except Exception as exc:
        # as the exact path words it for a file (Pillow names what it opened: here the item, not the buffer)
        raise MediaError(f"{name}: cannot decode image ({str(exc).replace(repr(buffer), repr(name))})") from None
