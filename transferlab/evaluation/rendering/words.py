"""What the report, `make results` and the MLflow parent say: method names, the notes on
what each verdict measured, and the sentences that state verdicts and the recommendation.
Only evaluate's report and the summaries import it, so rewording reruns nothing else."""

from __future__ import annotations

ONE_SEED_NOTE = (
    "Each strategy was fine-tuned with one seed (finetune.seeds: 1), so its verdict against "
    "scratch is McNemar's exact test on the two models' predictions for the same test "
    "images. It measures test-set sampling noise only: how much fine-tuning varies from seed "
    "to seed is unmeasured, so a gain may not repeat with another seed. With finetune.seeds: "
    "2 or more the verdict is a paired t interval over seeds instead, which measures that "
    "variation but in turn leaves test-set sampling noise out."
)


SEEDS_NOTE = (
    "Each strategy was fine-tuned with {seeds} seeds, so its verdict against scratch is a "
    "paired t interval over seeds. It measures seed-to-seed variation on this one fixed test "
    "set; test-set sampling noise, shared by both arms, is not in it (McNemar's test on each "
    "seed's predictions would measure it)."
)


PROBE_NOTE = (
    "A probe's verdict is its curve's at the largest shot count. Where every seed drew the "
    "same subset ('all'), the probe was fitted once and McNemar's exact test on the test "
    "images judges it (test-set sampling noise only); shot counts with distinct subsets are "
    "judged by a paired t interval over seeds (subset and seed variation on one fixed test "
    "set, without test-set sampling noise). A fine-tuned k-shot curve (curves.finetune) "
    "trains every seed anew, so each of its seeds is a fit of its own, even at 'all'."
)


# What each comparison measures, in words: (method, reference).
COMPARED = {
    "linear_vs_random_init": (
        "A linear probe on the pretrained features",
        "the same probe on randomly initialised features",
    ),
    "linear_vs_raw_pixels": ("A linear probe on the pretrained features", "one on raw pixels"),
    "knn_vs_random_init": ("kNN on the pretrained features", "kNN on randomly initialised ones"),
    "knn_vs_raw_pixels": ("kNN on the pretrained features", "kNN on raw pixels"),
}


STRATEGY_NAMES = {
    "full": "Full fine-tuning",
    "freeze": "Fine-tuning with the early stages frozen",
    "llrd": "Fine-tuning with layer-wise learning-rate decay",
    "norm": "Fine-tuning only the normalisation layers (and the head)",
    "bitfit": "BitFit, fine-tuning only the biases (and the head)",
    "lora": "LoRA, low-rank adapters on the 1x1 convolutions (and the head)",
    "lpft": "LP-FT (fine-tuning from the linear probe's head)",
}


RECOMMENDATION_RULE = (
    "The rule: the cheapest method (by the parameters its training updates; equals in the "
    "pipeline's order, LP-FT last) that the most accurate one does not beat beyond the noise; "
    "the cheaper choice it is compared with is picked by the same rule among the methods "
    "cheaper than it. Times are each method's stages' wall time as measured, cached ones "
    "included; they vary between runs, so they inform but do not decide."
)


METHOD_NAMES = {
    "probe": "the linear probe",
    "knn": "kNN",
    "full": "full fine-tuning",
    "scratch": "training from scratch",
    "freeze": "fine-tuning with the early stages frozen",
    "llrd": "fine-tuning with layer-wise learning-rate decay",
    "norm": "fine-tuning the normalisation layers only",
    "bitfit": "BitFit (biases only)",
    "lora": "LoRA adapters",
    "lpft": "LP-FT",
}


def method_name(method: str) -> str:
    """'full fine-tuning (full)': a method's name in words, with its key where they differ."""
    words = METHOD_NAMES.get(method, method)
    return words if words.lower() == method else f"{words} ({method})"


def amount(parameters: int | None) -> str:
    """3371008 -> '3.37 M'; None -> 'unknown'."""
    if parameters is None:
        return "unknown"
    for scale, unit in ((1e6, " M"), (1e3, " k")):
        if parameters >= scale:
            return f"{parameters / scale:.3g}{unit}"
    return str(parameters)


def cost(method: str, parameters: int | None, seconds: dict[str, float]) -> str:
    """'201 s, 3.38 M trainable parameters': a method's measured time (where known) and size."""
    size = f"{amount(parameters)} trainable parameters"
    return f"{seconds[method]:.0f} s, {size}" if seconds.get(method) else size


def recommendation_text(rec: dict, seconds: dict[str, float] | None = None) -> str:
    """The answer first, in one paragraph: which method to use, its accuracy and interval
    (simultaneous over the methods looked at), and how each cheaper method compares with the
    most accurate one within the margin. `seconds`: each method's stages' wall time as
    measured, where known."""
    seconds = seconds or {}
    level = f"{100 * rec['level']:.4g}%"
    head = (
        f"Use {method_name(rec['method'])}: test accuracy {rec['accuracy']:.4f} "
        f"[{rec['low']:.4f}, {rec['high']:.4f}] ({level} interval, simultaneous over the "
        f"{rec['looked_at']} methods compared on the test split: "
        f"{100 * rec['confidence']:g}% together; {rec['interval']}), "
        f"{cost(rec['method'], rec['trainable_parameters'], seconds)}."
    )
    if rec["method"] != rec["best"]:
        head += (
            f" It is as good as the most accurate, {method_name(rec['best'])} "
            f"({rec['best_accuracy']:.4f}), within the {rec['margin']:g}-point margin."
        )
    elif not rec["cheaper"]:
        head += " No method is cheaper."
    against = [c for c in rec["cheaper"] if c["method"] != rec["method"]]
    if against:
        best = method_name(rec["best"])
        head += (
            f" Cheaper methods against {best} (margin {rec['margin']:g} points): "
            + "; ".join(cheaper_words(c, seconds) for c in against)
            + "."
        )
    return head


OUTCOME_WORDS = {
    "as good": "as good, within the margin",
    "worse": "worse",
    "cannot tell": "cannot tell within the margin",
}


def cheaper_words(found: dict, seconds: dict[str, float]) -> str:
    """'the linear probe (0.8357; 10 s, 15.4 k trainable parameters): worse, +5.7 points [...]'."""
    difference = found["difference"]
    text = (
        f"{method_name(found['method'])} ({found['accuracy']:.4f}; "
        f"{cost(found['method'], found['trainable_parameters'], seconds)}): "
        f"{OUTCOME_WORDS[found['outcome']]}, {evidence(difference, alone=False)}"
    )
    if found.get("needed"):
        text += f"; about {found['needed']:,} {found['needed_units']} would decide it"
    return text


P_FLOOR = 1e-10  # smaller p values print as "<1e-10": their digits are float noise


def p_text(p: float | None) -> str:
    """A p value to two digits, '<1e-10' below that, '-' where there is none."""
    return "-" if p is None else f"<{P_FLOOR:g}" if p < P_FLOOR else f"{p:.2g}"


def evidence(v: dict, *, alone: bool = True) -> str:
    """A verdict in words with its numbers: gain, interval at its level, test, and (`alone`:
    a verdict of its own, not part of the recommendation's simultaneous set) p, raw and
    adjusted in its family."""
    p = ""
    if alone and v["p"] is not None:
        p = f", p{equals(v['p'])}"
        family = v.get("family", {})
        if family.get("adjust") == "holm" and family.get("size", 1) > 1:
            p += f", Holm-adjusted p{equals(v['p_adjusted'])} (family of {family['size']})"
    return (
        f"{100 * v['gain']:+.1f} points [{100 * v['low']:.1f}, {100 * v['high']:.1f}] "
        f"({100 * v['level']:.4g}% interval; {v['test']}{p})"
    )


def equals(p: float) -> str:
    """'=0.0067' or '<1e-10': a p value after its name."""
    text = p_text(p)
    return text if text.startswith("<") else f"={text}"


def conclusions(verdicts: dict[str, dict]) -> list[str]:
    """One sentence per verdict: who beats whom, by how many points, and by which test."""
    sentences = []
    for name, v in verdicts.items():
        strategy, _, reference = name.partition("_vs_")
        if name in COMPARED:
            method, other = COMPARED[name]
        else:
            method = STRATEGY_NAMES.get(strategy, f"Strategy {strategy}")
            other = "training the same architecture from scratch"
        if v["verdict"] == "positive":
            sentences.append(f"{method} beats {other}: {evidence(v)}: positive.")
        elif v["verdict"] == "negative":
            sentences.append(f"{method} is worse than {other}: {evidence(v)}: negative transfer.")
        elif "note" in v:  # e.g. no pretrained weights: a gain, but not transfer
            sentences.append(f"{method} against {other}: {evidence(v)}; {v['note']}.")
        else:
            could = ""
            if v.get("decidable"):
                could = f"; this test could tell a gain of {100 * v['decidable']:.1f} points"
            sentences.append(
                f"{method} is not distinguishable from {other}: {evidence(v)}, within the "
                f"noise, so inconclusive{could}."
            )
    return sentences


CACHED_WORDS = "not run by this `dvc repro` (their inputs were unchanged); measured earlier"


def outside_words(parts: dict[str, float]) -> str:
    """The run's time outside computation (timeline.outside) in one sentence."""
    return (
        f"Outside computation: {parts['outside_s']:.1f} s of the {parts['span_s']:.1f} s from "
        f"the first stage's start to the last one's end ({100 * parts['share']:.1f} %): "
        f"{parts['ready_s']:.1f} s getting ready, {parts['first_step_s']:.1f} s in first steps "
        f"and {parts['between_s']:.1f} s between stages (DVC's own work and each command's "
        "start)."
    )


def measured(t: dict) -> str:
    """'3.5 s on host, 2026-11-29 14:02 UTC': when and where a stage's timing was measured."""
    import datetime

    when = datetime.datetime.fromtimestamp(t["started"], datetime.UTC)
    host = str(t.get("run", "an unknown host")).split(":")[0]
    return f"{t['total_s']:.1f} s on {host}, {when:%Y-%m-%d %H:%M} UTC"


def conclusion(record: dict) -> str:
    """One sentence for the report's conclusion: the pick, the best by probe accuracy, and
    whether its gap to the runner-up is beyond the noise, with the test and its interval."""
    pick = f"{record['by']} ranked {' > '.join(record['order'])}"
    gap = record["gaps"].get("probe_accuracy")
    if gap is None:
        return f"Backbones: {pick}; fewer than two pretrained candidates, so no best to name."
    beyond = gap["verdict"] == "positive"
    return (
        f"Backbones: {pick}. By linear-probe test accuracy {gap['best']} is best, "
        f"{evidence(gap)} against {gap['runner_up']}: "
        + ("beyond the noise." if beyond else "within the noise, so not distinguishable.")
    )
