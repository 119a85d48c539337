"""One file -> one tensor: audio, images, NumPy arrays and torch tensors.

A loader is any callable ``loader(path) -> tensor``. The ones here also have
``check(path)``, which reads only what is needed to tell a readable file from a
broken one (a header), so a dataset can check every file it lists before anything
trains, cheaply. ``loader: auto`` picks one by the file's extension.

Audio comes as ``(channels, samples)`` float32 in [-1, 1]; images as
``(channels, height, width)`` float32 in [0, 1]; arrays and tensors as stored.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from math import gcd, prod
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sweeptrainer.config.instantiate import builds
from sweeptrainer.errors import ConfigError

# the extensions of the formats ``loader: auto`` reads, where the installed libsndfile
# (soundfile.available_formats()) and Pillow read them: see :func:`known`
AUDIO_FORMATS = {"WAV": (".wav",), "FLAC": (".flac",), "OGG": (".ogg", ".oga", ".opus"),
                 "MP3": (".mp3",), "AIFF": (".aiff", ".aif"), "CAF": (".caf",),
                 "AU": (".au", ".snd"), "W64": (".w64",), "RF64": (".rf64",)}  # fmt: skip
IMAGE_FORMATS = {"PNG": (".png",), "JPEG": (".jpg", ".jpeg"), "WEBP": (".webp",),
                 "BMP": (".bmp",), "TIFF": (".tif", ".tiff")}  # fmt: skip
ARRAY = (".npy",)
TENSOR = (".pt",)


@dataclass(frozen=True)
class Header:
    """What a file's header says, read without decoding it: the shape its loader gives
    (None where a header does not tell), and for images the file's mode and transparency,
    for audio its sample rate."""

    shape: tuple[int, ...] | None
    mode: str | None = None
    transparent: bool = False
    rate: int | None = None


def resample(signal: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``signal`` (channels, samples) from ``rate`` to ``target`` Hz (polyphase filtering)."""
    from scipy.signal import resample_poly

    common = gcd(rate, target)
    out = resample_poly(signal, target // common, rate // common, axis=-1)
    return out.astype(np.float32, copy=False)


@builds(object)
class Audio:
    """An audio file through soundfile (libsndfile: WAV, FLAC, OGG, MP3, AIFF ...);
    resampled to ``sample_rate`` Hz when given, averaged to one channel with ``mono: true``."""

    def __init__(self, sample_rate: int | None = None, mono: bool = False) -> None:
        if sample_rate is not None and (not isinstance(sample_rate, int) or sample_rate <= 0):
            raise ConfigError(
                f"sample_rate: expected null or a positive integer, got {sample_rate!r}"
            )
        self.sample_rate, self.mono = sample_rate, mono

    def __call__(self, path: str | Path) -> torch.Tensor:
        import soundfile

        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        if data.shape[0] == 0:
            raise ValueError("no audio frames (an empty or truncated file)")
        signal = np.ascontiguousarray(data.T)  # (channels, samples)
        if self.mono and signal.shape[0] > 1:
            signal = signal.mean(axis=0, keepdims=True)
        if self.sample_rate is not None and rate != self.sample_rate:
            signal = resample(signal, rate, self.sample_rate)
        return torch.from_numpy(signal)

    def check(self, path: str | Path) -> Header:
        import soundfile

        info = soundfile.info(str(path))
        if info.frames <= 0:
            raise ValueError("no audio frames")
        channels, frames = (1 if self.mono else info.channels), info.frames
        if self.sample_rate is not None and info.samplerate != self.sample_rate:
            frames = -(-frames * self.sample_rate // info.samplerate)  # resample_poly's length
        return Header((channels, frames), rate=info.samplerate)

    def __repr__(self) -> str:
        return f"Audio(sample_rate={self.sample_rate}, mono={self.mono})"


# Pillow's modes by what they hold: a mode of the training split's images is mapped to the
# one of L, LA, RGB, RGBA that holds it (see :func:`covering_mode`)
GREY_MODES = frozenset({"1", "L", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
SIXTEEN_BIT = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
IMAGE_MODES = ("L", "LA", "RGB", "RGBA")


def covering_mode(modes: Iterable[tuple[str, bool]]) -> str:
    """The one of L, LA, RGB, RGBA that holds every image of ``modes`` (Pillow mode, and
    whether it has transparency): colour if any is in colour, alpha if any has alpha. A
    palette image counts as colour (its palette's colours, never its indices)."""
    colour = alpha = False
    for mode, transparent in modes:
        alpha = alpha or transparent or mode in ("LA", "La", "PA", "RGBA", "RGBa")
        colour = colour or mode not in GREY_MODES | {"LA", "La"}
    return ("RGB" if colour else "L") + ("A" if alpha else "")


def channels(mode: str) -> int:
    """The channels of an image converted to Pillow mode ``mode``."""
    from PIL import Image as PILImage

    try:
        return PILImage.getmodebands(mode)
    except KeyError:
        raise ConfigError(
            f"dataset.image_mode: {mode!r} is not an image mode; expected auto, L, LA, RGB, "
            "RGBA (or another mode Pillow converts to)"
        ) from None


@builds(object)
class Image:
    """An image through Pillow (PNG, JPEG, WebP, BMP, TIFF ...), as float32 in [0, 1].

    ``mode`` converts every image: ``L`` (grey), ``LA``, ``RGB``, ``RGBA`` (or another
    Pillow mode). ``auto`` (or null) converts each image to the mode that covers it
    (:func:`covering_mode`); a dataset resolves it once for its training split, so every
    sample gets one channel count. A palette image becomes its colours, a 16-bit image is
    scaled by 65535.
    """

    def __init__(self, mode: str | None = None) -> None:
        if mode is not None and not isinstance(mode, str):
            raise ConfigError(
                f"dataset.image_mode: expected auto, L, LA, RGB or RGBA, got {mode!r}"
            )
        self.mode = None if mode in (None, "auto") else mode
        if self.mode is not None:
            channels(self.mode)  # a ConfigError for a mode Pillow does not know

    def __call__(self, path: str | Path) -> torch.Tensor:
        from PIL import Image as PILImage

        with PILImage.open(path) as image:
            mode = self.mode or covering_mode([(image.mode, image.has_transparency_data)])
            if image.mode in SIXTEEN_BIT | {"F"}:
                array = _grey(image, mode)
            else:
                if image.mode != mode:
                    image = image.convert(mode)
                array = np.asarray(image).astype(np.float32) / 255.0
        # (height, width) or (height, width, channels) -> (channels, height, width)
        chw = array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1))
        return torch.from_numpy(chw)

    def check(self, path: str | Path) -> Header:
        from PIL import Image as PILImage

        with PILImage.open(path) as image:  # reads the header only
            width, height = image.size
            mode = self.mode or covering_mode([(image.mode, image.has_transparency_data)])
            shape = (channels(mode), height, width)
            return Header(shape, image.mode, image.has_transparency_data)

    def __repr__(self) -> str:
        return f"Image(mode={self.mode or 'auto'!r})"


def _grey(image: Any, mode: str) -> np.ndarray:
    """A 16-bit (or 32-bit integer, or float) grey image in ``mode``, scaled to [0, 1]:
    Pillow's own conversion of these clips to 8 bits instead of scaling."""
    array = np.asarray(image).astype(np.float32)
    if image.mode in SIXTEEN_BIT:
        array /= 65535.0
    if mode not in IMAGE_MODES:
        raise ValueError(f"a {image.mode} image cannot be converted to {mode}; use L or RGB")
    layers = [array] * (3 if mode.startswith("RGB") else 1)
    if mode.endswith("A"):
        layers.append(np.ones_like(array))
    return np.stack(layers, axis=-1) if len(layers) > 1 else array


@builds(object)
class Array:
    """A ``.npy`` file (never unpickled: object arrays are refused)."""

    def __call__(self, path: str | Path) -> torch.Tensor:
        return torch.from_numpy(np.load(path, allow_pickle=False))

    def check(self, path: str | Path) -> Header:
        """The header alone, through numpy's public .npy reader (a memory map per file
        cost 0.3 ms: 30 s for 100,000 files), and the file's size against it."""
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:  # 3.0 (field names beyond latin-1): numpy's loader reads its header
                array = np.load(path, mmap_mode="r", allow_pickle=False)
                return Header(tuple(array.shape))
            if dtype.hasobject:
                raise ValueError("it holds Python objects (refused: never unpickled)")
            size = os.fstat(f.fileno()).st_size
            if size < f.tell() + prod(shape) * dtype.itemsize:
                raise ValueError(f"it is shorter than its header says ({size} bytes)")
        return Header(tuple(shape))

    def __repr__(self) -> str:
        return "Array()"


@builds(object)
class Tensor:
    """A ``.pt`` file holding one tensor, loaded with ``weights_only=True``."""

    def __call__(self, path: str | Path) -> torch.Tensor:
        value = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"holds a {type(value).__name__}, expected one tensor")
        return value

    def check(self, path: str | Path) -> Header:
        import zipfile

        if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
            raise ValueError("not a file written by torch.save")
        return Header(None)

    def __repr__(self) -> str:
        return "Tensor()"


@functools.cache
def known() -> dict[str, str]:
    """Extension -> loader kind of ``loader: auto``: the audio formats the installed
    libsndfile reads, the image formats Pillow reads, ``.npy`` and ``.pt``."""
    import soundfile
    from PIL import Image as PILImage

    audio = set(soundfile.available_formats())
    PILImage.init()
    image = set(PILImage.OPEN)
    return {
        **{e: "audio" for f, ext in AUDIO_FORMATS.items() if f in audio for e in ext},
        **{e: "image" for f, ext in IMAGE_FORMATS.items() if f in image for e in ext},
        **dict.fromkeys(ARRAY, "array"),
        **dict.fromkeys(TENSOR, "tensor"),
    }


@builds(object)
class Auto:
    """Picks the loader by extension (:func:`known`): audio (wav, flac, ogg, mp3, aiff ...
    as libsndfile reads them), image (png, jpg, webp, bmp, tiff), array (npy), tensor
    (pt). ``sample_rate`` and ``mono`` go to the audio loader, ``mode`` to the image loader."""

    def __init__(
        self, sample_rate: int | None = None, mono: bool = False, mode: str | None = None
    ) -> None:
        self.loaders: dict[str, Any] = {
            "audio": Audio(sample_rate, mono),
            "image": Image(mode),
            "array": Array(),
            "tensor": Tensor(),
        }

    def kind(self, path: str | Path) -> str:
        suffix, kinds = Path(path).suffix.lower(), known()
        if suffix not in kinds:
            raise ValueError(
                f"no loader for {suffix or 'files without an extension'!r} "
                f"(auto knows {', '.join(kinds)}); set dataset.loader to a _target_ of yours"
            )
        return kinds[suffix]

    def __call__(self, path: str | Path) -> torch.Tensor:
        return self.loaders[self.kind(path)](path)

    def check(self, path: str | Path) -> Header:
        header: Header = self.loaders[self.kind(path)].check(path)
        return header

    def __repr__(self) -> str:
        return f"Auto({self.loaders['audio']!r}, {self.loaders['image']!r})"
