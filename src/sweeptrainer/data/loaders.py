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
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np
import torch

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


def resample(signal: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``signal`` (channels, samples) from ``rate`` to ``target`` Hz (polyphase filtering)."""
    from scipy.signal import resample_poly

    common = gcd(rate, target)
    out = resample_poly(signal, target // common, rate // common, axis=-1)
    return out.astype(np.float32, copy=False)


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

    def check(self, path: str | Path) -> None:
        import soundfile

        info = soundfile.info(str(path))
        if info.frames <= 0:
            raise ValueError("no audio frames")

    def __repr__(self) -> str:
        return f"Audio(sample_rate={self.sample_rate}, mono={self.mono})"


class Image:
    """An image through Pillow (PNG, JPEG, WebP, BMP, TIFF ...), as float32 in [0, 1];
    ``mode`` converts first (``L``: one grey channel, ``RGB``: three), null keeps the file's
    own."""

    def __init__(self, mode: str | None = None) -> None:
        self.mode = mode

    def __call__(self, path: str | Path) -> torch.Tensor:
        from PIL import Image as PILImage

        with PILImage.open(path) as image:
            if self.mode is not None and image.mode != self.mode:
                image = image.convert(self.mode)
            array = np.asarray(image)
        scale = 65535.0 if array.dtype == np.uint16 else 255.0 if array.dtype == np.uint8 else 1.0
        array = array.astype(np.float32) / scale
        # (height, width) or (height, width, channels) -> (channels, height, width)
        chw = array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1))
        return torch.from_numpy(chw)

    def check(self, path: str | Path) -> None:
        from PIL import Image as PILImage

        with PILImage.open(path) as image:  # reads the header only
            image.size  # noqa: B018

    def __repr__(self) -> str:
        return f"Image(mode={self.mode!r})"


class Array:
    """A ``.npy`` file (never unpickled: object arrays are refused)."""

    def __call__(self, path: str | Path) -> torch.Tensor:
        return torch.from_numpy(np.load(path, allow_pickle=False))

    def check(self, path: str | Path) -> None:
        np.load(path, mmap_mode="r", allow_pickle=False)  # reads the header only

    def __repr__(self) -> str:
        return "Array()"


class Tensor:
    """A ``.pt`` file holding one tensor, loaded with ``weights_only=True``."""

    def __call__(self, path: str | Path) -> torch.Tensor:
        value = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"holds a {type(value).__name__}, expected one tensor")
        return value

    def check(self, path: str | Path) -> None:
        import zipfile

        if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
            raise ValueError("not a file written by torch.save")

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

    def check(self, path: str | Path) -> None:
        self.loaders[self.kind(path)].check(path)

    def __repr__(self) -> str:
        return f"Auto({self.loaders['audio']!r}, {self.loaders['image']!r})"
