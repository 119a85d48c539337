"""Models. ``input_shape`` and ``output_dim`` come from the dataset at build time."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from sweeptrainer.errors import ConfigError

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
