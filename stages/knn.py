"""Stage: weighted kNN probe on the cached features (DINOv2 / solo-learn style)."""

from __future__ import annotations

import itertools
import time

import numpy as np
import torch
import torch.nn.functional as F

from stages import io
from stages.errors import cli
from stages.params import Knn, load_params, to_dict

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


@cli
def main() -> None:
    from stages import tracking

    params = load_params()

    def split(name: str) -> tuple[np.ndarray, np.ndarray]:
        return (
            io.load_array(io.split_file(params.paths.features, name, "features")),
            io.load_array(io.split_file(params.paths.features, name, "labels")),
        )

    (train_x, train_y), (val_x, val_y), (test_x, _) = split("train"), split("val"), split("test")
    num_classes = int(max(train_y.max(), val_y.max())) + 1
    with tracking.stage_run(
        METHOD, {"knn": to_dict(params.knn)}, required=params.tracking.required
    ) as run:
        start = time.perf_counter()
        ks, Ts = grid(params.knn)
        k, T, scores = select_k_T(
            train_features=train_x,
            train_labels=train_y,
            val_features=val_x,
            val_labels=val_y,
            ks=ks,
            Ts=Ts,
            num_classes=num_classes,
        )
        # As the linear probe refits on train+val, the test bank holds both splits.
        probs = knn_predict_proba(
            bank_features=np.concatenate([train_x, val_x]),
            bank_labels=np.concatenate([train_y, val_y]),
            query_features=test_x,
            k=k,
            T=T,
            num_classes=num_classes,
        )
        seconds = time.perf_counter() - start
        out = io.method_dir(params.paths.methods, METHOD)
        io.save_array(out / io.PREDICTIONS_FILE, probs)
        record = {
            "method": METHOD,
            "k": k,
            "T": T,
            "val_accuracy": scores[f"k={k},T={T:g}"],
            "val_accuracy_by_k_T": scores,
            "seconds": round(seconds, 3),
        }
        io.write_json(out / io.RECORD_FILE, record)
        run.log_metrics({"k": k, "T": T, "val_accuracy": record["val_accuracy"]})
        run.log_artifact(out / io.RECORD_FILE)
        print(f"knn: k={k}, T={T:g}, val accuracy {record['val_accuracy']:.4f} ({seconds:.1f} s)")


if __name__ == "__main__":
    main()
