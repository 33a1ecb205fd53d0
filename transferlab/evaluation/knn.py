"""Weighted kNN on frozen features (DINOv2 / solo-learn): cosine similarity, votes exp(sim / T)."""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F

from transferlab.params import Knn

METHOD = "knn"


def knn_predict_proba(
    *,
    bank_features: np.ndarray,
    bank_labels: np.ndarray,
    query_features: np.ndarray,
    k: int,
    T: float,
    num_classes: int,
    chunk: int = 1024,
) -> np.ndarray:
    """Votes exp(cos / T) of the k most similar bank items, normalised to (N, K) float32."""
    bank = F.normalize(torch.from_numpy(np.asarray(bank_features, np.float32)), dim=1)
    labels = torch.from_numpy(np.asarray(bank_labels, np.int64))
    k = min(k, len(bank))  # a 1-shot bank can hold fewer than k items
    out = np.empty((len(query_features), num_classes), dtype=np.float32)
    for start in range(0, len(query_features), chunk):
        query = torch.from_numpy(np.asarray(query_features[start : start + chunk], np.float32))
        similarity = F.normalize(query, dim=1) @ bank.T
        top, index = similarity.topk(k, dim=1)
        # Subtracting the row's top similarity leaves the vote ratios unchanged and keeps
        # exp() finite for small T.
        weights = ((top - top[:, :1]) / T).exp()
        votes = torch.zeros(len(query), num_classes).scatter_add_(1, labels[index], weights)
        out[start : start + len(query)] = (votes / votes.sum(1, keepdim=True)).numpy()
    return out


def knn_accuracy(
    *,
    bank_features: np.ndarray,
    bank_labels: np.ndarray,
    query_features: np.ndarray,
    query_labels: np.ndarray,
    k: int,
    T: float,
    num_classes: int,
) -> float:
    """Accuracy of the weighted-kNN vote on the queries."""
    probs = knn_predict_proba(
        bank_features=bank_features,
        bank_labels=bank_labels,
        query_features=query_features,
        k=k,
        T=T,
        num_classes=num_classes,
    )
    return float((probs.argmax(1) == query_labels).mean())


def select_k_T(
    *,
    train_features: np.ndarray,
    train_labels: np.ndarray,
    val_features: np.ndarray,
    val_labels: np.ndarray,
    ks: tuple[int, ...],
    Ts: tuple[float, ...],
    num_classes: int,
) -> tuple[int, float, dict[str, float]]:
    """Best (k, T) by val accuracy over the grid; ties go to the smaller k, then larger T."""
    scores: dict[tuple[int, float], float] = {}
    for k, T in itertools.product(ks, Ts):
        probs = knn_predict_proba(
            bank_features=train_features,
            bank_labels=train_labels,
            query_features=val_features,
            k=k,
            T=T,
            num_classes=num_classes,
        )
        scores[(k, T)] = float((probs.argmax(1) == val_labels).mean())
    k, T = max(scores, key=lambda kt: (scores[kt], -kt[0], kt[1]))
    return k, T, {f"k={kk},T={tt:g}": s for (kk, tt), s in scores.items()}


def grid(config: Knn) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The (k, T) values to try: the grids where given, else the single defaults."""
    return (config.k_grid or (config.k,)), (config.T_grid or (config.T,))
