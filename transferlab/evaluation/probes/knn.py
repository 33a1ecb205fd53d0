"""Weighted kNN on frozen features (DINOv2 / solo-learn): cosine similarity, votes exp(sim / T)."""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F

from transferlab.evaluation.probes.grid_choice import middle_of_best
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
    """Best (k, T) by val images classified right, over the grid.

    Ties follow grid_choice's rule, one axis at a time: k is the middle of the ks whose best
    T reaches the top score, then T the middle of the Ts that reach it at that k, each axis
    ordered strongest prior first (more neighbours; a higher T, flatter votes), so of two
    middle values the larger k, the larger T."""
    correct: dict[tuple[int, float], int] = {}
    for k, T in itertools.product(ks, Ts):
        probs = knn_predict_proba(
            bank_features=train_features,
            bank_labels=train_labels,
            query_features=val_features,
            k=k,
            T=T,
            num_classes=num_classes,
        )
        correct[(k, T)] = int((probs.argmax(1) == val_labels).sum())
    k_order, T_order = sorted(set(ks), reverse=True), sorted(set(Ts), reverse=True)
    k = middle_of_best(k_order, {kk: max(correct[(kk, tt)] for tt in Ts) for kk in k_order})
    T = middle_of_best(T_order, {tt: correct[(k, tt)] for tt in T_order})
    scores = {f"k={kk},T={tt:g}": n / len(val_labels) for (kk, tt), n in correct.items()}
    return k, T, scores


def grid(config: Knn) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The (k, T) values to try: the grids where given, else the single defaults."""
    return (config.k_grid or (config.k,)), (config.T_grid or (config.T,))
