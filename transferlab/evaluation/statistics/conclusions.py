"""What a run concludes, judged as families (family.py): the conclusions family and one family
per curve comparison. Reads nothing: evaluate hands it the scored predictions and curve rows.

The conclusions family holds every verdict the report's Conclusion states: each strategy
against scratch (paired by training seed), each probe against its references at the curve's
largest shot, and each backbone gap (best against runner-up by a measured accuracy). Every
other shot count of a curve comparison is judged in that comparison's own family, so no cell
is judged alone, and none twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from transferlab.evaluation.curves import kshot
from transferlab.evaluation.statistics import family, ranking, verdict
from transferlab.evaluation.statistics.verdict import Paired
from transferlab.params import BASELINE, Params

CONCLUSIONS = "conclusions"
HEADLINE_PROBES = ("linear", "knn")


@dataclass(frozen=True)
class Judged:
    """The run's verdicts, each record carrying its family, raw and adjusted p."""

    transfer: dict[str, dict]  # comparison -> record: strategies vs scratch, probes at 'all'
    gaps: dict[str, dict | None]  # accuracy column -> best vs runner-up (None: no two)
    curves: dict[str, dict[str, dict]]  # comparison -> shot -> record, in curve order
    families: dict[str, dict]  # family name -> {size, adjust}


def strategy_pairs(
    params: Params, seed_correct: Mapping[str, list[np.ndarray]], *, transferred: bool
) -> dict[str, Paired]:
    """Each fine-tuned strategy against scratch on their test predictions, by seed."""
    if BASELINE not in params.finetune.strategies:
        return {}
    return {
        f"{strategy}_vs_{BASELINE}": Paired(
            seed_correct[strategy], seed_correct[BASELINE], transferred
        )
        for strategy in params.finetune.runs
        if strategy != BASELINE
    }


def judge_run(
    params: Params,
    *,
    seed_correct: Mapping[str, list[np.ndarray]],
    curve_rows: Mapping[str, list[dict]],
    compared: dict,
    correct: Mapping[str, Mapping[str, list[np.ndarray]]],
    transferred: bool,
) -> Judged:
    """Judge the run. `curve_rows`: each curve stage's rows (linear, knn, finetune);
    `compared` and `correct`: the backbone comparison and the correctness behind its
    accuracy columns (comparison.with_finetuned); `transferred`: the studied backbone has
    pretrained weights."""
    members = strategy_pairs(params, seed_correct, transferred=transferred)
    stated = {}
    for probe in HEADLINE_PROBES:
        cells = family.curve_cells(
            curve_rows[probe], verdict.probe_pairs((probe,)), transferred=transferred
        )
        for name, by_shot in cells.items():
            stated[name] = max(by_shot, key=kshot.shot_order)  # 'all' where present
            members[name] = by_shot[stated[name]]
    gaps = {}
    for accuracy, by_key in correct.items():
        found = ranking.gap_pair(compared["candidates"], accuracy, correct=by_key)
        gaps[accuracy] = found and found[:2]
        if found:
            members[f"gap {accuracy}"] = found[2]
    judged = family.judge_family(members, config=params.verdict, name=CONCLUSIONS)
    curves = curve_verdicts(params, curve_rows, stated, judged, transferred=transferred)
    return Judged(
        transfer={k: v for k, v in judged.items() if not k.startswith("gap ")},
        gaps={
            accuracy: None
            if pair is None
            else {
                "best": pair[0],
                "runner_up": pair[1],
                "accuracy": accuracy,
                **judged[f"gap {accuracy}"],
            }
            for accuracy, pair in gaps.items()
        },  # fmt: skip
        curves=curves,
        families=families_of(judged, curves),
    )


def families_of(judged: Mapping[str, dict], curves: Mapping[str, dict[str, dict]]) -> dict:
    """Each family's name, size and correction, as its members' records carry them."""
    records = [*judged.values(), *(v for by_shot in curves.values() for v in by_shot.values())]
    return {
        v["family"]["name"]: {"size": v["family"]["size"], "adjust": v["family"]["adjust"]}
        for v in records
    }


def curve_verdicts(
    params: Params,
    curve_rows: Mapping[str, list[dict]],
    stated: Mapping[str, str],
    judged: Mapping[str, dict],
    *,
    transferred: bool,
) -> dict[str, dict[str, dict]]:
    """Every curve comparison per shot, in curve order: its own family's verdicts, and at the
    shot the conclusions state, the conclusions family's."""
    config, out = params.verdict, {}
    for probe in HEADLINE_PROBES:
        own = family.curve_comparisons(
            curve_rows[probe],
            verdict.probe_pairs((probe,)),
            config=config,
            transferred=transferred,
            stated=stated,
        )
        for name, by_shot in own.items():
            out[name] = kshot.in_curve_order({**by_shot, stated[name]: judged[name]})
    finetuned = family.curve_comparisons(
        curve_rows["finetune"],
        verdict.scratch_pairs(params.curves.finetune),
        config=config,
        transferred=transferred,
    )
    return {**out, **finetuned}
