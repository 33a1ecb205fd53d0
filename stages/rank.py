"""Stage rank: compare every candidate backbone on what its own stages measured (scores,
probe and kNN accuracy, size, extraction speed), rank them by select.by, and choose which
to fine-tune (the top select.top_k, or select.backbones)."""

from __future__ import annotations

from transferlab import publish
from transferlab.data.layout import load_prepared
from transferlab.evaluation.drivers.rank import rank_candidates
from transferlab.params import Params, load_params, to_dict
from transferlab.publish import Stage
from transferlab.selection import Selection, write_selection
from transferlab.shell import cli


@cli
def main() -> None:
    params = load_params()
    logged = {"select": to_dict(params.select), "verdict": to_dict(params.verdict)}
    with publish.stage("rank", params, logged) as recorder:
        line = run(params, recorder)
    print(line)


def run(params: Params, recorder: Stage) -> str:
    """The stage: the ranking and the selection under params.paths; returns its summary."""
    paths = params.paths
    recorder.clock.ready()
    record = rank_candidates(params, load_prepared(paths.prepared, "test").labels)
    chosen = tuple(record["selected"])
    write_selection(paths, Selection(chosen, {k: params.backbones[k] for k in chosen}))
    recorder.publish(record=record, record_path=paths.ranking)
    return f"ranked by {params.select.by}: {' > '.join(record['order'])}; fine-tuning {chosen}"


if __name__ == "__main__":
    main()
