"""Families of verdicts: comparisons stated together are corrected together. Pure functions.

A run states many verdicts; each at 95 % alone, about one in twenty true nulls would read as
a finding. Each family is adjusted by Holm's step-down method (Holm, Scand J Stat 1979), which
controls the family-wise error rate at 1 - verdict.confidence for any dependence between its
tests. With the m raw p values in ascending order p_(1) <= ... <= p_(m), the adjusted ones are

    p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))

and a verdict is positive or negative when p~ < alpha = 1 - confidence. A member without a
test (no spread) counts as p = 1: it was a comparison made.

Intervals compatible with those decisions: Holm tests the i-th smallest p at level
alpha / (m - i + 1) and stops at the first it cannot reject, k; every later one is accepted
at that step's level. Each member's interval is drawn at the level of the step that decided
it, 1 - alpha / (m - min(i, k) + 1), so it excludes 0 exactly when the verdict is positive or
negative (tests and intervals here are dual: verdict.py). Each interval covers at its own
level, at least verdict.confidence; they are not simultaneous intervals for the family
(Bonferroni's, all at 1 - alpha / m, would be, and are wider).

The families (docs/design.md, "Families of verdicts"): the conclusions (strategies against
scratch, the probes against their references at the largest shot, the backbones' best
against runner-up) form one; each curve comparison's other shot counts form one of their own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from transferlab.evaluation.curves.kshot import in_curve_order
from transferlab.evaluation.statistics import verdict
from transferlab.evaluation.statistics.verdict import Paired
from transferlab.params import Verdict

HOLM, NONE = "holm", "none"  # verdict.adjust


def holm(p_values: list[float]) -> list[float]:
    """Holm's adjusted p values, in the order given (nan counts as 1: no test was made)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: (1.0 if math.isnan(p_values[i]) else p_values[i], i))
    adjusted, running = [1.0] * m, 0.0
    for step, i in enumerate(order):
        p = 1.0 if math.isnan(p_values[i]) else p_values[i]
        running = max(running, min(1.0, (m - step) * p))
        adjusted[i] = running
    return adjusted


def step_levels(raw: list[float], adjusted: list[float], *, confidence: float) -> list[float]:
    """Per member, the level Holm's step-down tested it at: 1 - alpha / (m - min(r, k)), r its
    0-based rank by raw p and k the first rank not rejected."""
    alpha, m = 1 - confidence, len(raw)
    order = sorted(range(m), key=lambda i: (1.0 if math.isnan(raw[i]) else raw[i], i))
    stop = next((rank for rank, i in enumerate(order) if adjusted[i] >= alpha), m)
    levels = [0.0] * m
    for rank, i in enumerate(order):
        levels[i] = 1 - alpha / (m - min(rank, stop))
    return levels


def judge_family(members: Mapping[str, Paired], *, config: Verdict, name: str) -> dict[str, dict]:
    """Every member's verdict record, its family corrected by verdict.adjust: p raw and
    adjusted side by side, the interval at the level of its Holm step (module docstring)."""
    keys = list(members)
    first = [verdict.apply_test(members[k], level=config.confidence) for k in keys]
    raw = [t.p for t in first]
    if config.adjust == NONE or len(keys) < 2:
        adjusted, levels = (
            [1.0 if math.isnan(p) else p for p in raw],
            [config.confidence] * len(keys),
        )
    else:
        adjusted = holm(raw)
        levels = step_levels(raw, adjusted, confidence=config.confidence)
    out = {}
    for key, tested, p_adjusted, level in zip(keys, first, adjusted, levels, strict=True):
        if level != config.confidence:
            tested = verdict.apply_test(members[key], level=level)
        judged = verdict.record(tested, config=config, transferred=members[key].transferred)
        judged["p_adjusted"] = None if math.isnan(tested.p) else float(f"{p_adjusted:.4g}")
        judged["family"] = {"name": name, "size": len(keys), "adjust": config.adjust}
        out[key] = judged
    return out


def curve_cells(
    rows: list[dict], pairs: Mapping[str, tuple[str, str]], *, transferred: bool
) -> dict[str, dict[str, Paired]]:
    """Per named (method, reference) pair of series, its fits paired by seed at each shot
    count, in curve order (shots where the method has no fit are left out)."""
    shots = in_curve_order(dict.fromkeys(r["shot"] for r in rows))
    out: dict[str, dict[str, Paired]] = {}
    for name, (method, reference) in pairs.items():
        cells = {}
        for shot in shots:
            method_fits, reference_fits = verdict.paired_fits(rows, method, reference, shot)
            if method_fits:
                cells[shot] = Paired(method_fits, reference_fits, transferred)
        out[name] = cells
    return out


def curve_comparisons(
    rows: list[dict],
    pairs: Mapping[str, tuple[str, str]],
    *,
    config: Verdict,
    transferred: bool,
    stated: Mapping[str, str] | None = None,
) -> dict[str, dict[str, dict]]:
    """Per comparison, a verdict at each shot, in curve order; each comparison's shots are one
    family, but for the shot `stated` names for it (judged in the conclusions family by the
    caller, and left out here). One fit per arm is McNemar's test, more the rule of verdict.py."""
    out: dict[str, dict[str, dict]] = {}
    for name, cells in curve_cells(rows, pairs, transferred=transferred).items():
        own = {shot: pair for shot, pair in cells.items() if shot != (stated or {}).get(name)}
        out[name] = judge_family(own, config=config, name=f"curve {name}")
    return out
