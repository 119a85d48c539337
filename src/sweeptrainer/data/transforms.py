"""Transforms for ``transform``, ``preprocess`` and ``augmentation`` lists, in plain torch.

Any callable works in those lists (torchvision's and torchaudio's transforms, your own
functions); these cover the common steps without either library. Each takes and returns
one sample's tensor; random ones draw from torch's global generator, which the trainer
seeds per batch, so they give the same result for the same seed whatever the number of
DataLoader workers. :class:`MixUp` is a batch step: it takes and returns
``(inputs, targets)`` of a whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from sweeptrainer.config.instantiate import builds
from sweeptrainer.errors import ParamError


def _positive_int(value: object, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ParamError(param, "a positive integer", value)
    return value


def _count(value: object, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ParamError(param, "an integer >= 0", value)
    return value


def _number(value: object, param: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParamError(param, "a number", value)
    return float(value)


def _probability(value: object, param: str = "p") -> float:
    p = _number(value, param)
    if not 0.0 <= p <= 1.0:
        raise ParamError(param, "a probability in [0, 1]", value)
    return p


# ----------------------------------------------------------------- audio


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + hz / 700.0)  # the HTK mel scale


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(
    n_freqs: int, sample_rate: int, n_mels: int, f_min: float, f_max: float
) -> torch.Tensor:
    """Triangular filters, equally spaced on the mel scale: (n_freqs, n_mels)."""
    freqs = torch.linspace(0.0, sample_rate / 2, n_freqs, dtype=torch.float64)
    edges = _mel_to_hz(
        torch.linspace(
            _hz_to_mel(torch.tensor(f_min)).item(),
            _hz_to_mel(torch.tensor(f_max)).item(),
            n_mels + 2,
            dtype=torch.float64,
        )
    )
    widths = edges[1:] - edges[:-1]
    slopes = edges[None, :] - freqs[:, None]  # (n_freqs, n_mels + 2)
    rising = -slopes[:, :-2] / widths[:-1]
    falling = slopes[:, 2:] / widths[1:]
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


@builds(object)
class MelSpectrogram:
    """A (log-)mel spectrogram of a waveform: ``(channels, samples)`` ->
    ``(channels, n_mels, frames)``. ``log``: natural log of the power plus 1e-6."""

    def __init__(
        self,
        sample_rate: int,
        n_fft: int = 400,
        hop_length: int = 160,
        n_mels: int = 64,
        f_min: float = 0.0,
        f_max: float | None = None,
        log: bool = True,
    ) -> None:
        sample_rate = _positive_int(sample_rate, "sample_rate")
        n_fft, hop_length = _positive_int(n_fft, "n_fft"), _positive_int(hop_length, "hop_length")
        n_mels = _positive_int(n_mels, "n_mels")
        f_min = _number(f_min, "f_min")
        f_max = _number(f_max, "f_max") if f_max is not None else sample_rate / 2
        if not 0 <= f_min < f_max <= sample_rate / 2:
            raise ParamError(
                "f_max", f"f_min ({f_min}) < f_max <= sample_rate/2 ({sample_rate / 2})", f_max
            )
        self.n_fft, self.hop_length, self.log = n_fft, hop_length, log
        self.window = torch.hann_window(n_fft)
        self.filters = mel_filterbank(n_fft // 2 + 1, sample_rate, n_mels, f_min, f_max)
        self.args = dict(
            sample_rate=sample_rate,
            n_fft=n_fft,
            hop_length=hop_length,
            n_mels=n_mels,
            f_min=f_min,
            f_max=f_max,
            log=log,
        )

    def __call__(self, signal: torch.Tensor) -> torch.Tensor:
        shape = signal.shape[:-1]
        flat = signal.reshape(-1, signal.shape[-1]).float()
        if flat.shape[-1] < self.n_fft // 2 + 1:  # stft's reflection padding needs this much
            flat = F.pad(flat, (0, self.n_fft // 2 + 1 - flat.shape[-1]))
        spec = (
            torch.stft(
                flat,
                self.n_fft,
                self.hop_length,
                window=self.window,
                center=True,
                return_complex=True,
            )
            .abs()
            .pow(2)
        )
        mel = torch.matmul(spec.transpose(-1, -2), self.filters).transpose(-1, -2)
        if self.log:
            mel = torch.log(mel + 1e-6)
        return mel.reshape(*shape, *mel.shape[-2:])

    def __repr__(self) -> str:
        return f"MelSpectrogram({', '.join(f'{k}={v}' for k, v in self.args.items())})"


@builds(object)
class FixedLength:
    """Crop or zero-pad the last axis to ``length`` (samples or frames). ``position``:
    keep the ``start`` or the ``center`` of longer inputs."""

    def __init__(self, length: int, position: str = "start") -> None:
        _positive_int(length, "length")
        if position not in ("start", "center"):
            raise ParamError("position", "start or center", position)
        self.length, self.position = length, position

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        if n < self.length:
            return F.pad(x, (0, self.length - n))
        first = (n - self.length) // 2 if self.position == "center" else 0
        return x[..., first : first + self.length]

    def __repr__(self) -> str:
        return f"FixedLength({self.length}, position={self.position!r})"


@builds(object)
class AddNoise:
    """Augmentation: white noise at a signal-to-noise ratio drawn from
    [min_snr_db, max_snr_db], with probability ``p``."""

    def __init__(self, min_snr_db: float = 10.0, max_snr_db: float = 30.0, p: float = 1.0):
        low, high = _number(min_snr_db, "min_snr_db"), _number(max_snr_db, "max_snr_db")
        if low > high:
            raise ParamError("min_snr_db", f"at most max_snr_db ({max_snr_db})", min_snr_db)
        self.min_snr_db, self.max_snr_db, self.p = low, high, _probability(p)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) >= self.p:
            return x
        snr = self.min_snr_db + (self.max_snr_db - self.min_snr_db) * torch.rand(())
        power = x.float().pow(2).mean().clamp(min=1e-10)
        noise = torch.randn_like(x) * torch.sqrt(power / (10 ** (snr / 10)))
        return x + noise


# ----------------------------------------------------------------- masking (SpecAugment)


class _Masking:
    axis = -1

    def __init__(self, max_width: int, count: int = 1, fill: str | float = "mean") -> None:
        _positive_int(max_width, "max_width")
        if fill != "mean":
            _number(fill, "fill")
        self.max_width, self.count, self.fill = max_width, _count(count, "count"), fill

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        size = x.shape[self.axis]
        value = x.mean() if self.fill == "mean" else float(self.fill)
        for _ in range(self.count):
            width = int(torch.randint(0, min(self.max_width, size) + 1, ()))
            start = int(torch.randint(0, size - width + 1, ()))
            x.narrow(self.axis, start, width).fill_(value)
        return x

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_width={self.max_width}, count={self.count})"


@builds(object)
class TimeMasking(_Masking):
    """Augmentation: ``count`` bands of up to ``max_width`` frames (last axis) set to the
    spectrogram's mean (``fill``), as in SpecAugment."""

    axis = -1


@builds(object)
class FrequencyMasking(_Masking):
    """Augmentation: ``count`` bands of up to ``max_width`` mel bins (second-last axis) set
    to the spectrogram's mean (``fill``), as in SpecAugment."""

    axis = -2


# ----------------------------------------------------------------- images and features


def _pair(size: object, param: str = "size") -> tuple[int, int]:
    """An int (a square) or [height, width], each a positive integer."""
    if isinstance(size, int) and not isinstance(size, bool):
        return _positive_int(size, param), size
    if isinstance(size, Sequence) and not isinstance(size, str) and len(size) == 2:
        return _positive_int(size[0], param), _positive_int(size[1], param)
    raise ParamError(param, "a positive integer or [height, width]", size)


@builds(object)
class Resize:
    """Resize the last two axes (an image's height and width) to ``size`` (an int: a
    square), bilinear with antialiasing."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _pair(size)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.reshape(-1, *x.shape[-3:]) if x.ndim >= 3 else x[None, None]
        out = F.interpolate(
            batch.float(), size=self.size, mode="bilinear", antialias=True, align_corners=False
        )
        return out.reshape(*x.shape[:-2], *self.size)

    def __repr__(self) -> str:
        return f"Resize({list(self.size)})"


@builds(object)
class Normalize:
    """``(x - mean) / std`` per channel (first axis); one value each applies to all."""

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]) -> None:
        for param, value in (("mean", mean), ("std", std)):
            values = (
                value if isinstance(value, Sequence) and not isinstance(value, str) else [value]
            )
            for v in values:
                _number(v, param)
        self.mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        self.std = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        if (self.std <= 0).any():
            raise ParamError("std", "positive values", std)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = (-1,) + (1,) * (x.ndim - 1)
        return (x - self.mean.reshape(shape)) / self.std.reshape(shape)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


@builds(object)
class Standardize:
    """Each sample to zero mean and unit variance (over all its values)."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        return (x - x.mean()) / x.std().clamp(min=1e-6)

    def __repr__(self) -> str:
        return "Standardize()"


@builds(object)
class RandomCrop:
    """Augmentation: pad the last two axes by ``padding`` (zeros), then crop a random
    window of ``size`` (default: the input's own size, i.e. a random shift)."""

    def __init__(
        self,
        size: int | Sequence[int] | None = None,
        padding: int = 0,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        self.size = None if size is None else _pair(size)
        self.padding = _count(padding, "padding")
        if self.size is not None and input_shape is not None and len(input_shape) >= 2:
            room = (input_shape[-2] + 2 * padding, input_shape[-1] + 2 * padding)
            if self.size[0] > room[0] or self.size[1] > room[1]:
                raise ParamError(
                    "size",
                    f"at most the padded input, {list(room)} (input {list(input_shape)})",
                    size,
                )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        height, width = self.size or tuple(x.shape[-2:])
        if self.padding:
            x = F.pad(x, (self.padding,) * 4)
        top = int(torch.randint(0, x.shape[-2] - height + 1, ()))
        left = int(torch.randint(0, x.shape[-1] - width + 1, ()))
        return x[..., top : top + height, left : left + width]

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


@builds(object)
class RandomHorizontalFlip:
    """Augmentation: flip the last axis with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = _probability(p)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(-1) if torch.rand(()) < self.p else x

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


# ----------------------------------------------------------------- batch steps


@builds(object)
class MixUp:
    """Batch step: mix each sample with another of the batch, inputs and targets alike,
    by a weight drawn from Beta(alpha, alpha). Class indices become one-hot probabilities
    first (cross-entropy takes those as targets); ``num_classes`` comes from the dataset."""

    def __init__(self, alpha: float = 0.2, num_classes: int | None = None) -> None:
        if not _number(alpha, "alpha") > 0:
            raise ParamError("alpha", "a positive number", alpha)
        self.alpha, self.num_classes = alpha, num_classes

    def __call__(
        self, inputs: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        weight = float(torch.distributions.Beta(self.alpha, self.alpha).sample())
        order = torch.randperm(len(inputs))
        if not targets.is_floating_point():
            if self.num_classes is None:
                raise ValueError("MixUp needs num_classes to mix class labels")
            targets = F.one_hot(targets, self.num_classes).float()
        mixed = weight * inputs + (1 - weight) * inputs[order]
        return mixed, weight * targets + (1 - weight) * targets[order]

    def __repr__(self) -> str:
        return f"MixUp(alpha={self.alpha}, num_classes={self.num_classes})"
