"""Stage prepare: decode and vet the data source once, draw the splits, store uint8 arrays."""

from __future__ import annotations

from transferlab import tracking
from transferlab.data.prepare import prepare
from transferlab.errors import cli
from transferlab.params import Params, load_params, to_dict
from transferlab.tracking import StageRun


@cli
def main() -> None:
    params = load_params()
    with tracking.stage_run("prepare", params, {"data": to_dict(params.data)}) as recorder:
        line = run(params, recorder)
    print(line)


def run(params: Params, recorder: StageRun) -> str:
    """The stage: params.data prepared under params.paths; returns its one-line summary."""
    recorder.clock.ready()
    card = prepare(params.data, params.paths, recorder)
    recorder.publish()
    splits = ", ".join(f"{s}: {card['splits'][s]['total']}" for s in card["splits"])
    return (
        f"{splits}; rejected: {card['rejected']['total']}, duplicate groups: "
        f"{card['duplicates']['groups']} (see the reports under reports/)"
    )


if __name__ == "__main__":
    main()
