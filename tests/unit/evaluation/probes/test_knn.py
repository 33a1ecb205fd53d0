import math

import numpy as np

from transferlab.evaluation.probes.knn import knn_predict_proba, select_k_T

BANK = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 1.0]], np.float32)
LABELS = np.array([0, 0, 1, 1])


def test_votes_are_temperature_weighted_cosine_similarities():
    query = np.array([[2.0, 0.0]], np.float32)  # scale must not matter: cosine
    probs = knn_predict_proba(
        bank_features=BANK, bank_labels=LABELS, query_features=query, k=3, T=1.0, num_classes=2
    )
    sims = [1.0, 0.9 / math.hypot(0.9, 0.1), 0.1 / math.hypot(0.1, 1.0)]
    votes = [math.exp(sims[0]) + math.exp(sims[1]), math.exp(sims[2])]
    assert np.allclose(probs[0], np.array(votes) / sum(votes), atol=1e-6)


def test_k_caps_at_the_bank_and_small_T_follows_the_nearest():
    query = np.array([[0.2, 1.0], [1.0, 0.05]], np.float32)
    probs = knn_predict_proba(
        bank_features=BANK, bank_labels=LABELS, query_features=query, k=50, T=1e-3, num_classes=3
    )
    assert probs.shape == (2, 3) and np.allclose(probs.sum(1), 1)
    assert probs[0].argmax() == 1 and probs[1].argmax() == 0
    assert probs[:, 2].max() == 0  # no bank item has class 2


def test_select_prefers_the_k_that_val_rewards():
    # class 0 is a tight cluster of 1 point plus 5 far-off class-1 points nearby in angle:
    # k=1 is right on val, k=6 is outvoted.
    bank = np.array([[1.0, 0.0]] + [[1.0, 0.6]] * 5, np.float32)
    labels = np.array([0, 1, 1, 1, 1, 1])
    val = np.array([[1.0, -0.1]], np.float32)
    k, T, scores = select_k_T(
        train_features=bank,
        train_labels=labels,
        val_features=val,
        val_labels=np.array([0]),
        ks=(6, 1),
        Ts=(1.0,),
        num_classes=2,
    )
    assert (k, T) == (1, 1.0)
    assert scores == {"k=6,T=1": 0.0, "k=1,T=1": 1.0}


def test_every_k_and_T_tied_gives_the_middle_of_each_axis():
    rng = np.random.default_rng(0)
    bank = np.concatenate(
        [[1.0, 0.0] + 0.01 * rng.normal(size=(10, 2))]
        + [[0.0, 1.0] + 0.01 * rng.normal(size=(10, 2))]
    ).astype(np.float32)
    labels = np.repeat([0, 1], 10)
    val = np.array([[1.0, 0.02], [0.02, 1.0], [0.9, 0.0]], np.float32)
    k, T, scores = select_k_T(
        train_features=bank,
        train_labels=labels,
        val_features=val,
        val_labels=np.array([0, 1, 0]),
        ks=(1, 15, 5, 10),  # listed in any order: the axis is sorted
        Ts=(0.05, 5.0, 0.5),
        num_classes=2,
    )
    assert set(scores.values()) == {1.0}
    # each axis from its strongest prior: k 15, 10, 5, 1 -> of the middle two, the first;
    # T 5.0, 0.5, 0.05 -> the middle one
    assert (k, T) == (10, 0.5)


def test_two_adjacent_ks_tied_give_the_larger_k_the_stronger_prior():
    # the bank of test_select_prefers_the_k_that_val_rewards: k = 1 and 2 are right, 3 and 6
    # are outvoted
    bank = np.array([[1.0, 0.0]] + [[1.0, 0.6]] * 5, np.float32)
    k, T, scores = select_k_T(
        train_features=bank,
        train_labels=np.array([0, 1, 1, 1, 1, 1]),
        val_features=np.array([[1.0, -0.1]], np.float32),
        val_labels=np.array([0]),
        ks=(1, 2, 3, 6),
        Ts=(1.0,),
        num_classes=2,
    )
    assert scores == {"k=1,T=1": 1.0, "k=2,T=1": 1.0, "k=3,T=1": 0.0, "k=6,T=1": 0.0}
    assert (k, T) == (2, 1.0)
