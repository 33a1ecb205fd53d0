import dataclasses

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from tests.conftest import synthetic_features
from transferlab.evaluation.probes.probe import C_grid, fit_probe, resolve_backend


def test_grid_is_log_spaced_and_full_protocol_is_one_change(params):
    grid = C_grid(dataclasses.replace(params.probe, C_num=45))
    assert len(grid) == 45 and np.isclose(grid[0], 1e-6) and np.isclose(grid[-1], 1e5)
    assert np.allclose(np.diff(np.log10(grid)), 0.25)


@pytest.mark.parametrize("backend", ["sklearn", "torch"])
def test_probe_picks_the_interior_C_that_brute_force_finds(backend):
    train_x, train_y = synthetic_features(60, 0)
    val_x, val_y = synthetic_features(1000, 1)
    grid = np.logspace(-4, 4, 9)
    fit = fit_probe(
        train_features=train_x,
        train_labels=train_y,
        val_features=val_x,
        val_labels=val_y,
        grid=grid,
        max_iter=1000,
        backend=backend,
    )
    assert fit.backend == backend
    # independent brute force: a cold fit per C, scored on val
    scaler = StandardScaler().fit(train_x)
    brute = {
        C: (
            LogisticRegression(C=C, max_iter=1000)
            .fit(scaler.transform(train_x), train_y)
            .predict(scaler.transform(val_x))
            == val_y
        ).mean()
        for C in grid
    }
    assert max(brute, key=brute.get) == fit.C
    assert 1e-3 <= fit.C <= 1e-1  # the known answer: neither extreme
    assert fit.val_accuracy[fit.C] > fit.val_accuracy[1e-4] + 0.3
    assert fit.val_accuracy[fit.C] > fit.val_accuracy[1e4] + 0.01
    probs = fit.predict_proba(val_x)
    assert probs.shape == (1000, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_probe_exposes_head_weights_for_either_backend():
    train_x, train_y = synthetic_features(60, 0)
    fits = {
        backend: fit_probe(
            train_features=train_x,
            train_labels=train_y,
            val_features=train_x,
            val_labels=train_y,
            grid=np.array([1e-2]),
            max_iter=1000,
            backend=backend,
        )
        for backend in ("sklearn", "torch")
    }
    sk, ours = fits["sklearn"], fits["torch"]
    np.testing.assert_allclose(ours.scaler.mean_, sk.scaler.mean_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.scaler.scale_, sk.scaler.scale_, rtol=1e-5)
    np.testing.assert_allclose(ours.classifier.coef_, sk.classifier.coef_, atol=2e-3)
    np.testing.assert_allclose(ours.classifier.intercept_, sk.classifier.intercept_, atol=2e-3)


def test_auto_backend_is_torch_on_either_device_and_a_choice_is_kept():
    # auto = torch on CUDA, and on CPU too (measured faster there: params.yaml, README)
    assert resolve_backend("auto", torch.device("cuda")) == "torch"
    assert resolve_backend("auto", torch.device("cpu")) == "torch"
    assert resolve_backend("sklearn", torch.device("cuda")) == "sklearn"
    assert resolve_backend("sklearn", torch.device("cpu")) == "sklearn"


def test_unknown_backend_is_refused():
    x, y = synthetic_features(30, 0)
    with pytest.raises(ValueError, match="unknown probe backend 'jax'"):
        fit_probe(
            train_features=x,
            train_labels=y,
            val_features=x,
            val_labels=y,
            grid=np.array([1.0]),
            max_iter=10,
            backend="jax",
        )


@pytest.mark.parametrize("backend", ["sklearn", "torch"])
def test_lpft_head_is_the_chosen_C_fitted_on_train_alone(backend):
    """LP-FT selects its epochs on val, so the head it starts from never saw val: folded
    in, it scores on val exactly what the C search measured, unlike the train+val refit."""
    train_x, train_y = synthetic_features(60, 0)
    val_x, val_y = synthetic_features(200, 1)
    fit = fit_probe(
        train_features=train_x,
        train_labels=train_y,
        val_features=val_x,
        val_labels=val_y,
        grid=np.logspace(-2, 2, 5),
        max_iter=1000,
        backend=backend,
    )
    head = fit.head_arrays()
    logits = (val_x - head["mean"]) / head["scale"] @ head["coef"].T + head["intercept"]
    assert float((logits.argmax(1) == val_y).mean()) == pytest.approx(fit.val_accuracy[fit.C])
    assert head["C"] == fit.C
    assert not np.allclose(head["coef"], fit.classifier.coef_)  # not the train+val refit


@pytest.mark.parametrize("backend", ["sklearn", "torch"])
def test_Cs_tied_on_val_give_the_middle_C_in_either_backend(backend):
    train_x, train_y = synthetic_features(60, 0, signal=20.0)
    val_x, val_y = synthetic_features(6, 1, signal=20.0)
    grid = np.logspace(-3, 2, 6)
    fit = fit_probe(
        train_features=train_x,
        train_labels=train_y,
        val_features=val_x,
        val_labels=val_y,
        grid=grid,
        max_iter=200,
        backend=backend,
    )
    assert set(fit.val_accuracy.values()) == {1.0}
    assert grid[2] == fit.C  # six tied: the 3rd and 4th are the middle, the smaller is taken
