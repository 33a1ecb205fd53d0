"""Stage 1: read the source, draw the splits, store decoded uint8 arrays and a data card."""

from __future__ import annotations

from pathlib import Path

from stages import data, io
from stages.data import Dataset, LabelledImages
from stages.errors import UserError, cli
from stages.params import Data, load_params, to_dict


def read_source(config: Data) -> Dataset:
    """Dispatch on data.source."""
    if config.source == "fashion-mnist":
        return data.read_fashion_mnist(Path(config.path))
    raise UserError(f"data.source: unsupported source {config.source!r}.")


def make_splits(dataset: Dataset, config: Data) -> dict[str, LabelledImages]:
    """Cap per class, hold out a stratified val split from train, keep the given test split."""
    pool = dataset.train.subset(
        data.cap_per_class(dataset.train.labels, config.train_per_class, seed=config.seed)
    )
    train_index, val_index = data.stratified_split(
        pool.labels, config.val_fraction, seed=config.seed
    )
    test = dataset.test.subset(
        data.cap_per_class(dataset.test.labels, config.test_per_class, seed=config.seed)
    )
    return {"train": pool.subset(train_index), "val": pool.subset(val_index), "test": test}


@cli
def main() -> None:
    from stages import tracking

    params = load_params()
    with tracking.stage_run(
        "prepare", {"data": to_dict(params.data)}, required=params.tracking.required
    ) as run:
        dataset = read_source(params.data)
        splits = make_splits(dataset, params.data)
        data.save_prepared(params.paths.prepared, splits, dataset.classes)
        card = data.data_card(splits, dataset.classes)
        io.write_json(params.paths.data_card, card)
        run.log_metrics({f"{s}_images": card["splits"][s]["total"] for s in splits})
        run.log_artifact(params.paths.data_card)
        print(", ".join(f"{s}: {card['splits'][s]['total']}" for s in splits))


if __name__ == "__main__":
    main()
