import warnings

import numpy as np
import pytest
from scipy.optimize import minimize

from transferlab.evaluation.scores.transferability import SCORES, logme, score_all, shrinkage_hscore


def blobs(n: int, d: int, classes: int, *, separation: float, seed: int = 0):
    """Gaussian noise plus class means `separation` apart along the first `classes` axes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    features = rng.standard_normal((n, d)) + 0.5
    features[:, :classes] += separation * np.eye(classes)[labels]
    return features, labels


def direct_logme(features: np.ndarray, labels: np.ndarray) -> float:
    """Mean over classes of max over (alpha, beta) of log N(y; 0, F F^T / alpha + I / beta)
    - 1e-5 (alpha + beta) / 2, / N: the evidence with thuml/LogME's epsilon guard."""
    n = len(features)
    gram = features @ features.T
    evidence = []
    for k in np.unique(labels):
        y = (labels == k).astype(np.float64)

        def negative(log_ab, y=y):
            alpha, beta = np.exp(log_ab)
            cov = gram / alpha + np.eye(n) / beta
            guard = 1e-5 * (alpha + beta) / 2
            # slogdet and solve, not multivariate_normal.logpdf: its positive-definiteness
            # cut-off refuses the ill-conditioned cov near a target in the span of F.
            log_det = np.linalg.slogdet(cov)[1]
            log_pdf = -(n * np.log(2 * np.pi) + log_det + y @ np.linalg.solve(cov, y)) / 2
            return -log_pdf + guard

        fits = [
            minimize(negative, start, method="Nelder-Mead", options=dict(xatol=1e-9, fatol=1e-12))
            for start in ([0.0, 0.0], [3.0, -1.0], [-3.0, 2.0])
        ]
        evidence.append(-min(fit.fun for fit in fits))
    return float(np.mean(evidence) / n)


@pytest.mark.parametrize(
    "n, d, classes, separation",
    # N == D, then N < D twice; without the guard (20, 64, 3, 10.0) had no maximum (NaN).
    [(40, 5, 3, 1.5), (60, 8, 2, 1.0), (30, 30, 3, 3.0), (20, 30, 2, 1.0), (20, 64, 3, 10.0)],
)
def test_logme_is_the_maximised_gaussian_marginal_likelihood(n, d, classes, separation):
    features, labels = blobs(n, d, classes, separation=separation, seed=n + d)
    assert logme(features, labels) == pytest.approx(direct_logme(features, labels), rel=1e-4)


def test_logme_counts_zero_singular_values_as_prior_only_directions():
    # All-zero columns leave F F^T, hence the marginal likelihood, unchanged; dropping the
    # (D - rank) log(alpha) term from log|alpha I + beta F^T F| would shift the score.
    features, labels = blobs(50, 6, 3, separation=1.5)
    padded = np.hstack([features, np.zeros((50, 4))])
    assert logme(padded, labels) == pytest.approx(logme(features, labels), rel=1e-9)
    assert logme(padded, labels) == pytest.approx(direct_logme(padded, labels), rel=1e-4)


@pytest.mark.parametrize("n, d", [(20, 64), (30, 30)])  # N < D, N == D
def test_logme_is_finite_and_silent_when_n_is_at_most_d(n, d):
    features, labels = blobs(n, d, 3, separation=10.0, seed=n + d)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(logme(features, labels))


def test_logme_is_finite_when_the_target_lies_in_the_span_of_the_features():
    labels = np.arange(30) % 3
    onehot = np.eye(3)[labels]  # every target is a column: a zero residual
    with_noise = np.hstack([onehot, np.random.default_rng(0).standard_normal((30, 2))])
    for features in (onehot, with_noise):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            score = logme(features, labels)
        assert np.isfinite(score)
        assert score == pytest.approx(direct_logme(features, labels), rel=1e-4)


def test_logme_still_ranks_when_n_is_below_d():
    features, labels = blobs(20, 64, 3, separation=3.0)
    for seed in range(3):
        noise = np.random.default_rng(seed).standard_normal(features.shape)
        assert logme(features, labels) > logme(noise, labels) + 0.1


def direct_shrinkage_hscore(features: np.ndarray, labels: np.ndarray) -> float:
    """Ledoit & Wolf (2004) shrinkage written out, class means by a loop, 1/N covariances."""
    x = features - features.mean(0)
    n, d = x.shape
    sample = np.cov(x, rowvar=False, bias=True)
    mu = np.trace(sample) / d
    delta2 = np.sum((sample - mu * np.eye(d)) ** 2) / d
    beta2 = sum(np.sum((np.outer(row, row) - sample) ** 2) / d for row in x) / n**2
    shrinkage = min(beta2, delta2) / delta2
    shrunk = shrinkage * mu * np.eye(d) + (1 - shrinkage) * sample
    class_means = np.empty_like(x)
    for k in np.unique(labels):
        class_means[labels == k] = x[labels == k].mean(0)
    between = np.cov(class_means, rowvar=False, bias=True)
    return float(np.trace(np.linalg.inv(shrunk) @ ((1 - shrinkage) * between)))


def plain_hscore(features: np.ndarray, labels: np.ndarray) -> float:
    """Bao et al. (2019) without regularisation: tr(cov(f)^+ cov(E[f|y]))."""
    class_means = np.empty_like(features)
    for k in np.unique(labels):
        class_means[labels == k] = features[labels == k].mean(0)
    cov_f = np.cov(features, rowvar=False, bias=True)
    return float(np.trace(np.linalg.pinv(cov_f) @ np.cov(class_means, rowvar=False, bias=True)))


@pytest.mark.parametrize("n, d, classes", [(60, 4, 3), (30, 50, 4)])  # the last has N < D
def test_hscore_matches_a_direct_computation(n, d, classes):
    features, labels = blobs(n, d, classes, separation=2.0, seed=d)
    features[:, -1] *= 5.0  # anisotropic, so the shrinkage is neither 0 nor 1
    assert shrinkage_hscore(features, labels) == pytest.approx(
        direct_shrinkage_hscore(features, labels), rel=1e-9
    )


def test_hscore_tends_to_the_plain_h_score_when_n_is_much_larger_than_d():
    features, labels = blobs(20000, 3, 3, separation=1.0)
    features[:, 0] *= 10.0
    plain = plain_hscore(features, labels)
    assert 0.1 < plain < 2  # at most C - 1
    assert shrinkage_hscore(features, labels) == pytest.approx(plain, rel=1e-2)


def test_hscore_is_invariant_to_rotation_scaling_and_translation_only():
    features, labels = blobs(80, 6, 3, separation=2.0)
    rotation = np.linalg.qr(np.random.default_rng(1).standard_normal((6, 6)))[0]
    score = shrinkage_hscore(features, labels)
    moved = 3.0 * features @ rotation + 7.0
    assert shrinkage_hscore(moved, labels) == pytest.approx(score, rel=1e-9)
    # An anisotropic rescaling keeps the plain H-score but moves the shrinkage target.
    stretch = features * np.array([10.0, 1, 1, 1, 1, 0.1])
    assert plain_hscore(stretch, labels) == pytest.approx(plain_hscore(features, labels))
    assert shrinkage_hscore(stretch, labels) != pytest.approx(score, rel=1e-3)


def test_hscore_has_no_noise_floor_where_the_plain_one_has():
    rng = np.random.default_rng(0)
    n, d, classes = 300, 60, 3
    noise, labels = rng.standard_normal((n, d)), np.arange(n) % classes
    # The plain H-score of pure noise is about (C - 1) D / N = 0.4: it overfits.
    assert plain_hscore(noise, labels) > 0.25
    assert shrinkage_hscore(noise, labels) < 0.05


@pytest.mark.parametrize("name", sorted(SCORES))
@pytest.mark.parametrize(
    "n, d, classes",
    # N < D, N == D, then classes of 2, 2 and 1 image(s)
    [(20, 64, 3), (30, 30, 3), (10, 64, 5), (6, 3, 3), (4, 10, 4)],
)
def test_scores_are_finite_and_silent_on_few_images_and_tiny_classes(name, n, d, classes):
    features, labels = blobs(n, d, classes, separation=3.0, seed=n + d)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(SCORES[name](features, labels))


@pytest.mark.parametrize("name", sorted(SCORES))
def test_separable_features_beat_noise_and_permuted_labels(name):
    score = SCORES[name]
    features, labels = blobs(120, 10, 3, separation=3.0)
    noise = np.random.default_rng(5).standard_normal(features.shape)
    permuted = np.random.default_rng(6).permutation(labels)
    assert score(features, labels) > score(noise, labels)
    assert score(features, labels) > score(features, permuted)


def test_score_all_runs_every_score_and_ignores_label_values():
    features, labels = blobs(40, 5, 2, separation=2.0)
    scores = score_all(features, labels)
    assert set(scores) == {"logme", "hscore"}
    assert scores["logme"] == logme(features, labels)
    assert scores["hscore"] == shrinkage_hscore(features, labels)
    assert score_all(features, np.where(labels == 0, 7, 3)) == pytest.approx(scores)


@pytest.mark.parametrize("name", sorted(SCORES))
def test_unusable_inputs_raise_a_clear_value_error(name):
    score = SCORES[name]
    features, labels = blobs(20, 4, 2, separation=1.0)
    with pytest.raises(ValueError, match="20 rows but labels has 19 entries"):
        score(features, labels[:-1])
    with pytest.raises(ValueError, match="at least two"):
        score(features, np.full(20, 3))
    with pytest.raises(ValueError, match="2-D"):
        score(features[:, 0], labels)
    with pytest.raises(ValueError, match="NaN"):
        score(np.where(features > 1, np.nan, features), labels)
