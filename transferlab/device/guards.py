"""Numeric and resource guards: CUDA out-of-memory back-off, finiteness checks, determinism."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch
from torch import nn

from transferlab.errors import UserError

T = TypeVar("T")
log = logging.getLogger(__name__)

# Batch norm needs two values per channel in training; timm's pooled 1x1 maps give one per image.
MIN_TRAIN_MICRO_BATCH = 2


class OomBackoff:
    """A micro-batch size that halves on CUDA out-of-memory, down to a floor, and stays there."""

    def __init__(self, batch_size: int, *, floor: int = 1, desc: str) -> None:
        self.batch_size = batch_size
        self.floor = min(floor, batch_size)
        self.desc = desc
        self.size = batch_size

    def run(self, fn: Callable[[int], T]) -> T:
        """Return fn(micro_batch_size); on CUDA out-of-memory halve the size and call again."""
        while True:
            try:
                return fn(self.size)
            except torch.cuda.OutOfMemoryError:
                pass  # leave the handler first, so the failed attempt's tensors can be freed
            self._halve()

    def backward(
        self,
        batch_loss: Callable[[slice], torch.Tensor],
        rows: int,
        optimizer: torch.optim.Optimizer,
    ) -> torch.Tensor:
        """Fresh gradients for one batch of `rows`, in micro-batches that shrink on OOM."""

        def attempt(micro: int) -> torch.Tensor:
            optimizer.zero_grad(set_to_none=True)  # drop a failed attempt's partial sums
            return accumulate_gradients(batch_loss, rows, micro)

        return self.run(attempt)

    def _halve(self) -> None:
        if self.size // 2 < self.floor:
            raise UserError(
                f"{self.desc}: CUDA out of memory even at batch size {self.size} (the floor is "
                f"{self.floor}); free GPU memory, lower backbone.image_size, or use device: cpu."
            )
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        self.size //= 2
        log.warning(
            "%s: CUDA out of memory; retrying with batch size %d (asked for %d).",
            self.desc,
            self.size,
            self.batch_size,
        )


def accumulate_gradients(
    batch_loss: Callable[[slice], torch.Tensor], rows: int, micro: int
) -> torch.Tensor:
    """Backward through `rows` in micro-batches; the gradients equal one batch of `rows`.

    `batch_loss(rows)` must return a mean-reduced loss, so each part is weighted by its
    share of the batch. Returns the whole batch's (detached) loss.
    """
    parts = []
    for start in range(0, rows, micro):
        part = slice(start, min(start + micro, rows))
        loss = batch_loss(part) * ((part.stop - part.start) / rows)
        loss.backward()
        parts.append(loss.detach().float())
    # Summed where the losses live: a host-made zero would be a blocking copy to the GPU.
    return torch.stack(parts).sum()


def grad_norm(model: nn.Module) -> torch.Tensor:
    """Total gradient norm as a device scalar (no host sync); 0 when nothing has a gradient."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


def check_finite(losses: torch.Tensor, grad_norms: torch.Tensor, *, upto: int, epoch: int) -> None:
    """Stop at the first step in 0..upto whose loss or gradient is non-finite, naming it."""
    seen_loss, seen_grad = losses[: upto + 1], grad_norms[: upto + 1]
    bad = (~(torch.isfinite(seen_loss) & torch.isfinite(seen_grad))).nonzero()  # one sync
    if not len(bad):
        return
    step = int(bad[0])
    loss = float(seen_loss[step])
    what = f"loss ({loss})" if not math.isfinite(loss) else f"gradient ({float(seen_grad[step])})"
    raise UserError(
        f"non-finite {what} at epoch {epoch}, step {step + 1}; no checkpoint was written. "
        "Lower finetune.<strategy>.lr or check the input data."
    )


@contextlib.contextmanager
def deterministic(device: torch.device) -> Iterator[None]:
    """Deterministic torch algorithms for the duration of a stage on CPU; restored after.

    On CUDA this is left off: several kernels used here (grid_sample's backward, atomic-add
    reductions) have no deterministic version, and forcing one costs speed.
    """
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
