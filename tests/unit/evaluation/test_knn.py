import math

import numpy as np

from transferlab.evaluation.knn import knn_predict_proba, select_k_T

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
