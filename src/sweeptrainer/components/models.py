"""Models. ``input_shape`` and ``output_dim`` come from the dataset at build time."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from sweeptrainer.config.instantiate import builds
from sweeptrainer.errors import ConfigError

ModuleT = TypeVar("ModuleT", bound=nn.Module)

ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
}


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ConfigError(
            f"model.activation: expected one of {', '.join(ACTIVATIONS)}, got {name!r}"
        )
    return ACTIVATIONS[name]()


@builds(nn.Module)
class FFNN(nn.Module):
    """A feed-forward network over the flattened input."""

    def __init__(
        self,
        input_shape: Sequence[int],
        output_dim: int,
        hidden_sizes: Sequence[int] = (128,),
        dropout: float = 0.0,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if not 0 <= dropout < 1:
            raise ConfigError(f"model.dropout: expected a value in [0, 1), got {dropout}")
        layers: list[nn.Module] = [nn.Flatten()]
        size = math.prod(input_shape)
        for hidden in hidden_sizes:
            layers += [nn.Linear(size, hidden), make_activation(activation)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            size = hidden
        layers.append(nn.Linear(size, output_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@builds(nn.Module)
class CNN(nn.Module):
    """A small CNN for C x H x W input: conv blocks (each halving the size), a linear head."""

    def __init__(
        self,
        input_shape: Sequence[int],
        output_dim: int,
        channels: Sequence[int] = (16, 32),
        kernel_size: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ConfigError(
                f"model: CNN needs image-shaped input (channels, height, width); "
                f"the dataset gives {tuple(input_shape)}"
            )
        blocks: list[nn.Module] = []
        in_channels, size = input_shape[0], min(input_shape[1:])
        for out_channels in channels:
            blocks += [
                nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(),
            ]
            if size >= 2:
                blocks.append(nn.MaxPool2d(2))
                size //= 2
            in_channels = out_channels
        self.features = nn.Sequential(*blocks, nn.Flatten())
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *input_shape)).shape[1]
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(flat, output_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@builds(nn.Module)
class AudioCNN(nn.Module):
    """A small CNN for (log-mel) spectrograms, ``(channels, mel bins, frames)`` or
    ``(mel bins, frames)``: conv blocks with batch norm, each halving both axes, then the
    mean over frequency and time and a linear head, so clips of any length fit."""

    def __init__(
        self,
        input_shape: Sequence[int],
        output_dim: int,
        channels: Sequence[int] = (32, 64, 128),
        kernel_size: int = 3,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if len(input_shape) not in (2, 3):
            raise ConfigError(
                "model: AudioCNN needs spectrogram-shaped input (mel bins, frames) or "
                f"(channels, mel bins, frames); the dataset gives {tuple(input_shape)}"
            )
        in_channels = input_shape[0] if len(input_shape) == 3 else 1
        blocks: list[nn.Module] = []
        for out_channels in channels:
            blocks += [
                nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            in_channels = out_channels
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(in_channels, output_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:  # (batch, mel bins, frames): one channel
            x = x.unsqueeze(1)
        return self.head(self.features(x))


# ----------------------------------------------------------------- library models


def _find_last(model: nn.Module, kind: type[ModuleT]) -> tuple[nn.Module, str, ModuleT] | None:
    """(parent, attribute, module) of the last module of ``kind`` in definition order."""
    found: tuple[nn.Module, str, ModuleT] | None = None
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, kind):
                found = (parent, name, child)
    return found


def _find_first(model: nn.Module, kind: type[ModuleT]) -> tuple[nn.Module, str, ModuleT] | None:
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, kind):
                return parent, name, child
    return None


def adapt_input_channels(model: nn.Module, channels: int) -> None:
    """Make the first convolution take ``channels`` input channels (a grey image or a
    spectrogram into an RGB network). Its filters become the mean over the old channels,
    rescaled, so pretrained filters still respond to the same patterns."""
    found = _find_first(model, nn.modules.conv._ConvNd)
    if found is None or found[2].in_channels == channels:
        return
    parent, name, conv = found
    # its own class (Conv2d...): _ConvNd's constructor takes more than its subclasses'
    conv_class: Callable[..., nn.modules.conv._ConvNd] = type(conv)
    new = conv_class(
        channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
        dilation=conv.dilation, groups=1, bias=conv.bias is not None,
    )  # fmt: skip
    with torch.no_grad():
        mean = conv.weight.mean(dim=1, keepdim=True) * (conv.in_channels / channels)
        new.weight.copy_(mean.expand(-1, channels, *mean.shape[2:]))
        if conv.bias is not None and new.bias is not None:  # both or neither
            new.bias.copy_(conv.bias)
    setattr(parent, name, new)


def replace_head(model: nn.Module, output_dim: int) -> None:
    """Give the last linear layer ``output_dim`` outputs (a new, randomly set layer)."""
    found = _find_last(model, nn.Linear)
    if found is None:
        raise ConfigError("model: no linear output layer found to give the dataset's size")
    parent, name, linear = found
    if isinstance(linear, nn.modules.lazy.LazyModuleMixin):  # not sized yet
        setattr(parent, name, nn.LazyLinear(output_dim, bias=linear.bias is not None))
    elif linear.out_features != output_dim:
        setattr(
            parent, name, nn.Linear(linear.in_features, output_dim, bias=linear.bias is not None)
        )


def load_weights(model: nn.Module, path: str, key: str = "model.pretrained") -> list[str]:
    """Load a local weights file (a state dict, or a sweeptrainer state with ``model``)
    into ``model``: every tensor whose name and shape match; a first convolution trained on
    RGB goes to a model with other input channels by its channel mean. Returns the names
    left as they were (a new head, say). Loaded with ``weights_only=True``."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{key}: weights file {path!r} does not exist (cwd: {Path.cwd()})")
    try:
        data = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ConfigError(f"{key}: cannot load {path!r}: {type(err).__name__}: {err}") from None
    if isinstance(data, dict) and isinstance(data.get("model"), dict):
        data = data["model"]
    elif isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise ConfigError(f"{key}: {path!r} holds no state dict")
    own = model.state_dict()
    matched, skipped = {}, []
    for name, value in own.items():
        loaded = data.get(name)
        if loaded is not None and loaded.shape == value.shape:
            matched[name] = loaded
        elif (
            loaded is not None
            and loaded.ndim == 4
            and loaded.shape[2:] == value.shape[2:]
            and (loaded.shape[0] == value.shape[0])
        ):  # a first convolution with other input channels
            matched[name] = (
                loaded.mean(1, keepdim=True) * loaded.shape[1] / value.shape[1]
            ).expand_as(value)
        else:
            skipped.append(name)
    if not matched:
        raise ConfigError(
            f"{key}: no tensor of {path!r} fits the model (are they the same network?)"
        )
    model.load_state_dict(matched, strict=False)
    return skipped


@builds(nn.Module)
def torchvision_model(
    name: str,
    input_shape: Sequence[int],
    output_dim: int,
    pretrained: str | None = None,
    **kwargs: object,
) -> nn.Module:
    """A ``torchvision.models`` network by name, sized for the data: ``num_classes`` outputs,
    a first convolution for the data's channels. ``pretrained``: null (random weights), a
    local weights file, or a torchvision weights name (``DEFAULT``, ``IMAGENET1K_V1``:
    torchvision downloads them unless they are in its cache)."""
    import torchvision

    try:
        builder = torchvision.models.get_model_builder(name)
    except ValueError:
        known = ", ".join(sorted(torchvision.models.list_models(torchvision.models))[:12])
        raise ConfigError(
            f"model.name: torchvision has no model {name!r} (e.g. {known}, ...)"
        ) from None
    file = pretrained is not None and (
        Path(pretrained).suffix in (".pt", ".pth") or Path(pretrained).is_file()
    )
    if pretrained is not None and not file:
        model = builder(weights=pretrained, **kwargs)  # the library's own weights, then our sizes
    else:
        model = builder(weights=None, num_classes=output_dim, **kwargs)
    _fit(model, input_shape, output_dim)
    if file:
        _log_skipped(load_weights(model, str(pretrained)))
    return model


@builds(nn.Module)
def timm_model(
    name: str,
    input_shape: Sequence[int],
    output_dim: int,
    pretrained: str | None = None,
    **kwargs: object,
) -> nn.Module:
    """A ``timm`` network by name (``pip install timm``), sized by timm itself
    (``num_classes``, ``in_chans``). ``pretrained``: null or a local weights file."""
    import timm

    if name not in timm.list_models():
        raise ConfigError(f"model.name: timm has no model {name!r}")
    channels = input_shape[0] if len(input_shape) == 3 else 1
    model = timm.create_model(
        name, pretrained=False, num_classes=output_dim, in_chans=channels, **kwargs
    )
    if pretrained is not None:
        _log_skipped(load_weights(model, pretrained))
    return model


# what the config check reads of a target (as of a class's ClassVar): an attribute of a
# function, which mypy's function type does not declare
torchvision_model.required_packages = {"torchvision": "pip install torchvision"}  # type: ignore[attr-defined]
timm_model.required_packages = {"timm": "pip install timm"}  # type: ignore[attr-defined]


def _fit(model: nn.Module, input_shape: Sequence[int], output_dim: int) -> None:
    channels = input_shape[0] if len(input_shape) == 3 else 1
    adapt_input_channels(model, channels)
    replace_head(model, output_dim)


def _log_skipped(skipped: list[str]) -> None:
    if skipped:
        import logging

        shown = ", ".join(skipped[:4]) + (" ..." if len(skipped) > 4 else "")
        logging.getLogger("sweeptrainer").info(
            f"pretrained weights: {len(skipped)} tensor(s) kept their new values ({shown})"
        )
