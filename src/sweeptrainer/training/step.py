"""From batches to optimizer steps: gradient accumulation, mixed precision, clipping.

One batch: forward under autocast, loss scaled by 1/(batches in its group), backward
(through a GradScaler for float16). One optimizer step per group of
``accumulation_steps`` batches: unscale, clip, step, zero the gradients. The
trainer's loop decides where groups end; this object only does the arithmetic.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from sweeptrainer.training.batch import Inputs

log = logging.getLogger("sweeptrainer")

PRECISIONS = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}


def autocast_dtype(precision: object, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None: full precision)."""
    dtype = PRECISIONS[str(precision)]
    if dtype is torch.float16 and device.type != "cuda":
        # float16 needs loss scaling and is slow on CPUs; bfloat16 has float32's range
        log.warning(f"warning: precision 16 is for CUDA; on {device.type} bf16 is used instead")
        return torch.bfloat16
    return dtype


class Stepper:
    """Turns batches into gradients and groups of batches into optimizer steps."""

    def __init__(
        self,
        forward: Callable[..., torch.Tensor],
        model: nn.Module,
        criterion: nn.Module,
        optimizer: torch.optim.Optimizer,
        cfg: DictConfig,
        device: torch.device,
    ) -> None:
        self.forward, self.model, self.criterion, self.optimizer = (
            forward,
            model,
            criterion,
            optimizer,
        )
        self.accumulation = int(cfg.accumulation_steps)
        self.clip_norm = cfg.gradient_clip_norm
        self.clip_value = cfg.gradient_clip_value
        self.device = device
        self.dtype = autocast_dtype(cfg.precision, device)
        self.scaler = torch.amp.GradScaler(device.type) if self.dtype is torch.float16 else None
        self.last_grad_norm: torch.Tensor | None = None  # before clipping, when clipping by norm

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def backward(
        self, inputs: Inputs, y: torch.Tensor, group_size: int, share: float = 1.0
    ) -> torch.Tensor:
        """Forward and backward of one batch; returns its (unscaled, detached) loss.

        ``share``: this process's part of a batch split across processes, times their
        number (1 in a single process), so averaged gradients are those of the whole batch.
        """
        with self.autocast():
            outputs = self.forward(*inputs.args, **inputs.kwargs)
            # an empty share (share 0: no sample) still takes part in the gradient exchange,
            # with zero weight
            loss = self.criterion(outputs, y) if share else outputs.sum() * 0.0
        # the mean over the group's batches: N batches of size B act as one of size N*B
        scaled = loss * share / group_size if group_size > 1 or share != 1.0 else loss
        if self.scaler is not None:
            scaled = self.scaler.scale(scaled)
        scaled.backward()
        return loss.detach().float()

    def step(self, before: Callable[[], object] | None = None) -> None:
        """Clip, take the optimizer step, clear the gradients. ``before`` is called first,
        with the gradients complete and unscaled (the ``cb_on_before_optimizer_step`` hook)."""
        clipping = self.clip_norm is not None or self.clip_value is not None
        if self.scaler is not None and (clipping or before is not None):
            self.scaler.unscale_(self.optimizer)
        if before is not None:
            before()
        if self.clip_norm is not None:
            self.last_grad_norm = nn.utils.clip_grad_norm_(self._params(), self.clip_norm)
        if self.clip_value is not None:
            nn.utils.clip_grad_value_(self._params(), self.clip_value)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _params(self) -> Iterator[torch.Tensor]:
        return (p for group in self.optimizer.param_groups for p in group["params"])

    def state_dict(self) -> dict[str, Any] | None:
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


def parameter_groups(model: nn.Module, weight_decay: float | None = None) -> list[dict[str, Any]]:
    """Weights decay; biases and normalisation layers do not (weight_decay 0 in group 2).

    Without weight decay (``weight_decay`` 0: the config's, else the optimizer's default)
    the split changes nothing, and one group it is: an optimizer step loops over its
    groups, and the second group cost 2 % of a small model's step (``benches/notes.md``).
    The order of the parameters is the same either way, so the two layouts' states map
    one onto the other (:func:`fit_groups`). ``None``: not known, two groups.
    """
    norm_types = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm,
                  nn.modules.instancenorm._InstanceNorm)  # fmt: skip
    decay, no_decay = [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            if isinstance(module, norm_types) or name.endswith("bias") or param.ndim < 2:
                no_decay.append(param)
            else:
                decay.append(param)
    if weight_decay == 0:
        return [{"params": decay + no_decay}]
    groups: list[dict[str, Any]] = [{"params": decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def fit_groups(saved: dict[str, Any], optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """An optimizer state saved with two groups (weights, the rest), loadable into one
    group of the same parameters in the same order (a state from before the optimizer
    without weight decay got one group); any other state is returned as it is."""
    groups = saved.get("param_groups") if isinstance(saved, dict) else None
    if not isinstance(groups, list) or len(groups) < 2 or len(optimizer.param_groups) != 1:
        return saved
    if not all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups):
        return saved
    settings = [{k: v for k, v in g.items() if k != "params"} for g in groups]
    merged = [i for group in groups for i in group["params"]]
    alike = all(setting == settings[0] for setting in settings)
    if not alike or len(merged) != len(optimizer.param_groups[0]["params"]):
        return saved  # groups that differ, or other parameters: load_state_dict says so
    return {**saved, "param_groups": [{**groups[0], "params": merged}]}


def configure_determinism(reproducible: bool, compile: bool = False) -> None:
    """Deterministic algorithms and no cuDNN autotuning, or autotuning for speed.

    ``torch.use_deterministic_algorithms`` also sets the flag in TorchInductor's config,
    and importing that config costs about 2 s and 70 MB (torch 2.13). Only compiled models
    need it, so without ``compile`` the flag is set on the torch core alone.
    """
    import os

    if reproducible and torch.cuda.is_available():
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed by cuBLAS
    set_core_flag = getattr(torch._C, "_set_deterministic_algorithms", None)
    if compile or set_core_flag is None:
        torch.use_deterministic_algorithms(reproducible, warn_only=True)
    else:
        set_core_flag(reproducible, warn_only=True)
    torch.backends.cudnn.deterministic = reproducible
    torch.backends.cudnn.benchmark = not reproducible
