import dataclasses

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from stages.probe import C_grid, fit_probe


def test_grid_is_log_spaced_and_full_protocol_is_one_change(params):
    grid = C_grid(dataclasses.replace(params.probe, C_num=45))
    assert len(grid) == 45 and np.isclose(grid[0], 1e-6) and np.isclose(grid[-1], 1e5)
    assert np.allclose(np.diff(np.log10(grid)), 0.25)


def synthetic(n: int, seed: int, d: int = 200, signal: float = 0.9):
    """Three classes, each shifting its own 10 of d dims: dense enough that too small a C
    underfits, few enough samples that the weakest regularisation overfits."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    x = rng.normal(size=(n, d)).astype(np.float32)
    x[:, :30] += signal * np.eye(3)[labels].repeat(10, axis=1)
    return x, labels


def test_probe_picks_the_interior_C_that_brute_force_finds():
    train_x, train_y = synthetic(60, 0)
    val_x, val_y = synthetic(1000, 1)
    grid = np.logspace(-4, 4, 9)
    fit = fit_probe(
        train_features=train_x,
        train_labels=train_y,
        val_features=val_x,
        val_labels=val_y,
        grid=grid,
        max_iter=1000,
    )
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
