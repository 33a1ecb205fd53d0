"""Stage prepare: decode and vet the data source once, draw the splits, store uint8 arrays."""

from __future__ import annotations

from transferlab import publish
from transferlab.data.prepare import prepare
from transferlab.params import Params, load_params, to_dict
from transferlab.publish import Stage
from transferlab.shell import cli


@cli
def main() -> None:
    params = load_params()
    with publish.stage("prepare", params, {"data": to_dict(params.data)}) as recorder:
        line = run(params, recorder)
    print(line)


def run(params: Params, recorder: Stage) -> str:
    """The stage: params.data prepared under params.paths; returns its summary: the counts
    per split (and their range over classes), what was left out, and a warning line for
    each split too small to decide much."""
    recorder.clock.ready()
    card = prepare(params.data, params.paths, recorder.mlflow, confidence=params.verdict.confidence)
    recorder.publish()
    splits = card["splits"]
    per_class = ", ".join(f"{s} {class_range(splits[s]['per_class'])}" for s in splits)
    lines = [
        ", ".join(f"{s}: {splits[s]['total']}" for s in splits) + f" images (per class: "
        f"{per_class}); rejected: {card['rejected']['total']}, duplicate groups: "
        f"{card['duplicates']['groups']} (see the reports under reports/)",
        *(f"warning: {line}" for line in card["resolution"]["warnings"]),
    ]
    return "\n".join(lines)


def class_range(per_class: dict[str, int]) -> str:
    """'21-22' (or '6' when every class has as many): a split's images per class."""
    low, high = min(per_class.values()), max(per_class.values())
    return str(low) if low == high else f"{low}-{high}"


if __name__ == "__main__":
    main()
