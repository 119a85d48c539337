"""The hook table: every ``cb_on_*`` event and the arguments a method may declare.

This is the contract of docs/callbacks.md and PRODUCT.md, kept in one place.
``iteration`` is the epoch (epoch training) or the optimizer step (step
training), counted from 1; ``metrics`` is a dict of floats keyed like the
columns of ``metrics.csv``; ``loss`` is a detached 0-dim tensor (calling
``.item()`` on it waits for the device).
"""

PREFIX = "cb_on_"

HOOKS: dict[str, tuple[str, ...]] = {
    "cb_on_train_begin": ("trainer",),
    "cb_on_iteration_begin": ("trainer", "iteration"),
    "cb_on_step_begin": ("trainer", "iteration", "batch_idx"),
    # the batch's gradients are complete (accumulated over the group, unscaled from fp16),
    # before clipping and the optimizer step: gradient norms, custom clipping
    "cb_on_before_optimizer_step": ("trainer", "iteration", "batch_idx", "optimizer"),
    # after the batch: its backward and, when it ends an accumulation group, the optimizer
    # step (gradients cleared, parameters updated)
    "cb_on_step_end": ("trainer", "iteration", "batch_idx", "loss"),
    "cb_on_loader_exhausted": ("trainer", "iteration"),
    "cb_on_dev_begin": ("trainer", "iteration"),
    "cb_on_dev_step_begin": ("trainer", "batch_idx"),
    "cb_on_dev_step_end": ("trainer", "batch_idx", "loss"),
    "cb_on_dev_end": ("trainer", "iteration", "metrics"),
    "cb_on_iteration_end": ("trainer", "iteration", "metrics"),
    "cb_on_test_begin": ("trainer",),
    "cb_on_test_step_begin": ("trainer", "batch_idx"),
    "cb_on_test_step_end": ("trainer", "batch_idx", "loss"),
    "cb_on_test_end": ("trainer", "metrics"),
    "cb_on_train_end": ("trainer",),
    # once at the very end, after results.yaml (finished) or the stop/failure is recorded
    "cb_on_run_end": ("trainer", "status", "results", "error"),
}
