import dataclasses

import pytest
import torch
from torch import nn

from tests.conftest import make_images
from transferlab.device import guards
from transferlab.errors import UserError
from transferlab.models import backbone, strategies, training

CPU = torch.device("cpu")


def oom_above(limit: int, calls: list[int]):
    """A batch job that, like a GPU, runs out of memory above `limit` rows."""

    def job(size: int) -> int:
        calls.append(size)
        if size > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return size * 10

    return job


def test_backoff_halves_until_it_fits_and_says_so(caplog):
    calls: list[int] = []
    backoff = guards.OomBackoff(32, desc="extract train")
    assert backoff.run(oom_above(5, calls)) == 40
    assert calls == [32, 16, 8, 4]
    assert backoff.size == 4  # later batches start at the size that fitted
    assert backoff.run(oom_above(5, calls)) == 40 and calls[-1] == 4
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert (
        warned[-1]
        == "extract train: CUDA out of memory; retrying with batch size 4 (asked for 32)."
    )
    assert len(warned) == 3  # 32 -> 16 -> 8 -> 4, once each; the second run starts at 4


def test_backoff_stops_at_the_floor():
    backoff = guards.OomBackoff(8, floor=2, desc="finetune")
    with pytest.raises(UserError, match="out of memory even at batch size 2"):
        backoff.run(oom_above(1, []))


def test_other_errors_are_not_retried():
    def job(size: int) -> None:
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        guards.OomBackoff(8, desc="x").run(job)


def linear_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 3))


class OomAbove(nn.Module):
    """Wraps a model so that, like a small GPU, it runs out of memory above `limit` rows."""

    def __init__(self, inner: nn.Module, limit: int) -> None:
        super().__init__()
        self.inner, self.limit = inner, limit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > self.limit and self.training:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory.")
        return self.inner(x)


def bn_model() -> nn.Module:
    """A convolution, BatchNorm and a head: every backbone here has BatchNorm."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.LazyLinear(3)
    )


def accumulated(model: nn.Module, micro: int, *, train_bn: bool) -> tuple[torch.Tensor, dict]:
    """(loss, gradients) of one batch of 10 split into micro-batches of `micro` rows."""
    x, y = (
        torch.randn(10, 3, 8, 8, generator=torch.Generator().manual_seed(1)),
        torch.arange(10) % 3,
    )
    model.train(train_bn)
    model.zero_grad()

    def batch_loss(rows: slice) -> torch.Tensor:
        return nn.functional.cross_entropy(model(x[rows]), y[rows])

    loss = guards.accumulate_gradients(batch_loss, 10, micro)
    return loss, {name: p.grad.clone() for name, p in model.named_parameters()}


def test_accumulated_gradients_equal_one_full_batch_with_frozen_batchnorm():
    model = bn_model()
    model(torch.zeros(2, 3, 8, 8))  # materialise the lazy head
    full_loss, full = accumulated(model, 10, train_bn=False)
    loss, parts = accumulated(model, 3, train_bn=False)  # 3 + 3 + 3 + 1 rows
    torch.testing.assert_close(loss, full_loss)
    for name, grad in full.items():
        torch.testing.assert_close(parts[name], grad, msg=name)


def test_with_batchnorm_in_train_mode_micro_batches_normalise_on_their_own():
    # What docs/design.md states: with train-mode BatchNorm each micro-batch is normalised
    # with its own statistics, so accumulation sees every image but is not one full batch.
    model = bn_model()
    model(torch.zeros(2, 3, 8, 8))
    full_loss, full = accumulated(model, 10, train_bn=True)
    loss, parts = accumulated(model, 3, train_bn=True)
    assert not torch.allclose(loss, full_loss)
    assert not torch.allclose(parts["1.weight"], full["1.weight"])


def train(model: nn.Module, params, **changes) -> training.TrainResult:
    config = dataclasses.replace(params.finetune, epochs=2, batch_size=8, **changes)
    return training.train_model(
        model,
        train=make_images(8, size=32),
        val=make_images(2, size=32, seed=1),
        input_cfg=backbone.InputConfig(32, (0.5,) * 3, (0.5,) * 3, "bilinear"),
        config=config,
        device=CPU,
        param_groups=strategies.param_groups(model, "full", config, config.full.lr[0]),
        bn="train",
    )


def test_finetune_oom_keeps_the_effective_batch(params, caplog):
    plain = train(linear_model(), params)
    squeezed = train(OomAbove(linear_model(), limit=2), params)
    assert "retrying with batch size 2 (asked for 8)" in caplog.text
    for key, value in plain.state_dict.items():
        torch.testing.assert_close(squeezed.state_dict[f"inner.{key}"], value)
    assert [r["train_loss"] for r in squeezed.history] == pytest.approx(
        [r["train_loss"] for r in plain.history], rel=1e-5
    )


def test_non_finite_gradient_stops_with_step_and_epoch(params):
    model = linear_model()
    # The loss stays finite; only the gradient blows up, as with an fp overflow in backward.
    model[1].weight.register_hook(lambda grad: grad * float("inf"))
    with pytest.raises(UserError, match=r"non-finite gradient \(.*\) at epoch 1, step 1"):
        train(model, params)


def test_deterministic_is_scoped_to_cpu_stages():
    assert not torch.are_deterministic_algorithms_enabled()
    with guards.deterministic(CPU):
        assert torch.are_deterministic_algorithms_enabled()
    assert not torch.are_deterministic_algorithms_enabled()
    with guards.deterministic(torch.device("cuda")):
        assert not torch.are_deterministic_algorithms_enabled()


def test_deterministic_restores_state_after_an_error():
    with pytest.raises(ValueError), guards.deterministic(CPU):
        raise ValueError
    assert not torch.are_deterministic_algorithms_enabled()
