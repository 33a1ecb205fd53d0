import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from tests.conftest import synthetic_features
from transferlab.evaluation.probes import linear

CPU = torch.device("cpu")


def standardised(seed: int, n: int = 300):
    x, y = synthetic_features(n, seed, d=50, signal=0.6)
    return StandardScaler().fit_transform(x).astype(np.float32), y


@pytest.mark.parametrize("C", [1e-2, 1.0])
def test_objective_matches_sklearn_coefficients_and_accuracy(C):
    x, y = standardised(0)
    test_x, test_y = standardised(1, n=2000)
    reference = LogisticRegression(C=C, max_iter=5000, tol=1e-8).fit(x, y)
    weight, bias, _ = linear.fit_logistic(
        torch.from_numpy(x), torch.from_numpy(y), C=C, num_classes=3, max_iter=1000
    )
    # Same C, same minimiser (up to the stopping tolerance); a penalty scaled differently,
    # e.g. by n, would move the weights by tens of percent.
    relative = np.linalg.norm(weight.numpy() - reference.coef_) / np.linalg.norm(reference.coef_)
    assert relative < 0.01
    np.testing.assert_allclose(bias.numpy(), reference.intercept_, rtol=0, atol=0.01)
    ours = linear.accuracy(torch.from_numpy(test_x), torch.from_numpy(test_y), weight, bias)
    assert abs(ours - reference.score(test_x, test_y)) <= 0.005


def test_warm_start_saves_iterations():
    x, y = (torch.from_numpy(a) for a in standardised(0))
    start = linear.fit_logistic(x, y, C=0.1, num_classes=3, max_iter=1000)
    cold = linear.fit_logistic(x, y, C=0.2, num_classes=3, max_iter=1000)
    warm = linear.fit_logistic(x, y, C=0.2, num_classes=3, max_iter=1000, init=start[:2])
    assert warm[2] < cold[2]
    torch.testing.assert_close(warm[0], cold[0], atol=2e-3, rtol=0)


def test_grid_warm_starts_each_C_from_the_previous_one(monkeypatch):
    calls = []
    real = linear.fit_logistic

    def spy(x, y, **kwargs):
        result = real(x, y, **kwargs)
        calls.append((kwargs["C"], kwargs["init"], result))
        return result

    monkeypatch.setattr(linear, "fit_logistic", spy)
    train_x, train_y = synthetic_features(60, 0)
    val_x, val_y = synthetic_features(200, 1)
    fit = linear.fit_grid(
        train_features=train_x,
        train_labels=train_y,
        val_features=val_x,
        val_labels=val_y,
        grid=np.array([1.0, 1e-3, 1e-2]),  # unsorted on purpose: the grid runs smallest first
        max_iter=500,
        device=CPU,
    )
    assert [c for c, _, _ in calls[:3]] == [1e-3, 1e-2, 1.0]
    assert calls[0][1] is None
    for (_, _, previous), (_, init, _) in zip(calls[:2], calls[1:3], strict=True):
        assert init[0] is previous[0] and init[1] is previous[1]
    refit_C, refit_init, _ = calls[3]  # the train+val refit starts from the chosen C
    assert refit_C == fit.C and refit_init[0] is calls[[c for c, _, _ in calls].index(fit.C)][2][0]


def test_float64_is_refused():
    x = torch.zeros(4, 2, dtype=torch.float64)
    with pytest.raises(TypeError, match="float32"):
        linear.fit_logistic(x, torch.zeros(4, dtype=torch.long), C=1, num_classes=2, max_iter=5)


def test_head_predicts_original_labels():
    train_x, train_y = synthetic_features(60, 0)
    fit = linear.fit_grid(
        train_features=train_x,
        train_labels=train_y + 5,  # labels need not be 0..K-1
        val_features=train_x,
        val_labels=train_y + 5,
        grid=np.array([1.0]),
        max_iter=200,
        device=CPU,
    )
    assert set(fit.head.predict(fit.scaler.transform(train_x))) <= {5, 6, 7}
    assert fit.head.coef_.shape == (3, 200) and fit.scaler.mean_.shape == (200,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_and_cpu_agree():
    train_x, train_y = synthetic_features(200, 0)
    val_x, val_y = synthetic_features(300, 1)
    kwargs = dict(
        train_features=train_x,
        train_labels=train_y,
        val_features=val_x,
        val_labels=val_y,
        grid=np.logspace(-3, 1, 5),
        max_iter=500,
    )
    cpu = linear.fit_grid(**kwargs, device=CPU)
    gpu = linear.fit_grid(**kwargs, device=torch.device("cuda"))
    assert cpu.C == gpu.C
    for C in cpu.val_accuracy:
        assert abs(cpu.val_accuracy[C] - gpu.val_accuracy[C]) <= 0.01
    np.testing.assert_allclose(cpu.head.coef_, gpu.head.coef_, atol=5e-3, rtol=0)


def test_every_C_tied_on_val_gives_the_middle_of_the_grid_and_counts_are_exact():
    """The user's case: 6 val images all right at every C. The old tie rule took the grid's
    end, C = 1e-6, a near-uniform probe; the middle of 12 values is the 6th, 0.1."""
    train_x, train_y = synthetic_features(60, 0, signal=20.0)
    keep = np.concatenate([np.flatnonzero(train_y == c)[:15] for c in range(3)])
    train_x, train_y = train_x[keep], train_y[keep]  # balanced: no intercept outvotes W at 1e-6
    val_x, val_y = synthetic_features(6, 1, signal=20.0)
    search = linear.search_C(
        train_features=train_x,
        train_labels=train_y,
        val_features=val_x,
        val_labels=val_y,
        grid=np.logspace(-6, 5, 12),
        max_iter=100,
        device=CPU,
    )
    assert search.val_correct == dict.fromkeys(search.val_correct, 6)
    assert all(type(n) is int for n in search.val_correct.values())
    assert search.best_C == pytest.approx(0.1)
    assert search.val_accuracy[search.best_C] == 1.0


def test_one_thread_on_cpu_restores_the_callers_count_even_after_an_error():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with linear.one_thread(CPU):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), linear.one_thread(CPU):
            raise RuntimeError
        assert torch.get_num_threads() == 2
        with linear.one_thread(torch.device("cuda")):  # a GPU fit leaves the CPU's count alone
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_fit_is_the_same_bits_whatever_the_callers_thread_count(monkeypatch):
    # 10 classes of 600 points: sizes at which a 2-thread matrix product sums in another
    # order than a 1-thread one on the development machine
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 600)
    features = rng.normal(size=(600, 32)).astype(np.float32)
    features[:, :10] += 2 * np.eye(10)[labels]
    seen = []
    real = linear.one_thread

    def spy(device):
        seen.append(torch.get_num_threads())
        return real(device)

    monkeypatch.setattr(linear, "one_thread", spy)
    before = torch.get_num_threads()
    fits = []
    try:
        for threads in (2, 1):
            torch.set_num_threads(threads)
            fits.append(
                linear.fit_logistic(
                    torch.from_numpy(features),
                    torch.from_numpy(labels),
                    C=1.0,
                    num_classes=10,
                    max_iter=100,
                )
            )
    finally:
        torch.set_num_threads(before)
    assert seen == [2, 1]  # the fit went through one_thread at either count
    assert torch.equal(fits[0][0], fits[1][0]) and torch.equal(fits[0][1], fits[1][1])
    assert fits[0][2] == fits[1][2]
