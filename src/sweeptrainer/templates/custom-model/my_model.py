"""A model of your own: any torch.nn.Module whose constructor takes input_shape and output_dim."""

import math

import torch
from torch import nn


class MyModel(nn.Module):
    """Two hidden layers; dropout lowers itself once the model does well on dev."""

    def __init__(self, input_shape, output_dim, hidden=64, dropout=0.3):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(input_shape), hidden),
            nn.ReLU(),
            self.dropout,
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, output_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def cb_on_iteration_end(self, iteration, metrics):
        # Called by the trainer after every evaluation, with the metrics.csv row.
        if metrics["dev_accuracy"] > 0.95 and self.dropout.p > 0.1:
            self.dropout.p = 0.1
            print(f"iteration {iteration}: dev accuracy above 0.95, dropout lowered to 0.1")
