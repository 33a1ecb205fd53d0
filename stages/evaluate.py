"""Stage evaluate: test metrics, transfer verdicts, DVC plots, figures, provenance and the
report; the pipeline's params, final metrics and provenance also go on the MLflow parent run."""

from __future__ import annotations

from transferlab import publish
from transferlab.evaluation.drivers.evaluate import evaluate, method_names
from transferlab.evaluation.rendering.report import SUMMARY_KEYS
from transferlab.evaluation.rendering.words import evidence
from transferlab.params import Params, load_params, to_dict
from transferlab.provenance import git_state
from transferlab.publish import Stage
from transferlab.shell import cli


@cli
def main() -> None:
    params = load_params()
    with publish.stage("evaluate", params, {"methods": method_names(params)}) as recorder:
        line = run(params, recorder)
    print(line)


def run(params: Params, recorder: Stage) -> str:
    """The stage: metrics, verdicts, figures, the report and the MLflow parent's answer;
    returns what it prints (each method's accuracy, the verdicts, the recommendation)."""
    recorder.clock.ready()
    recorder.timing_path = None  # its parts go into the timeline it writes
    metrics, figures, provenance, compared, answer = evaluate(
        params, git=git_state(), clock=recorder.clock
    )
    log(recorder, params, metrics, figures, provenance, compared, answer)
    lines = [
        f"{method:>10}: accuracy {metrics[method]['accuracy']:.4f}  "
        f"ECE {metrics[method]['ece']:.4f}"
        for method in method_names(params)
    ]
    lines += [
        f"{name:>24}: {v['verdict']} ({evidence(v)})" for name, v in metrics["transfer"].items()
    ]
    lines.append(f"backbones by {compared['by']}: {' > '.join(compared['order'])}")
    return "\n".join([*lines, answer])


VERDICT_NUMBERS = ("gain", "p", "p_adjusted")


def log(run, params: Params, metrics, figures, provenance, compared, answer: str) -> None:
    """This stage's run, the parent (the run a user opens: the answer is its description,
    the report and figures its artifacts, as here) and one run per candidate backbone."""
    paths, verdicts = params.paths, metrics["transfer"]
    scores = {m: v for m, v in metrics.items() if m not in SUMMARY_KEYS}
    gains = {  # each verdict's gain and its p, raw and adjusted in its family
        f"{n}.{k}": v[k] for n, v in verdicts.items() for k in VERDICT_NUMBERS if v[k] is not None
    }
    tags = {f"verdict.{n}": v["verdict"] for n, v in verdicts.items()}
    tags["recommended"] = metrics["recommendation"]["method"]
    reports = [
        *[(path, "report") for path in (paths.metrics, paths.headline, paths.provenance)],
        *[(path, "report") for path in (paths.report, paths.report_html)],
        *[(figure, "report/figures") for figure in figures],  # report.md's links
    ]
    run.mlflow.log_metrics(gains)
    run.mlflow.set_tags(tags)
    run.publish(metrics=scores, artifacts=reports)
    run.mlflow.log_to_parent(
        params={k: v for k, v in to_dict(params).items() if k != "paths"},  # not params
        metrics={**scores, **gains},
        tags={**tags, "provenance": provenance},
        description=answer,
        artifacts=reports,
    )
    for key, numbers in metrics["backbones"].items():
        candidate = compared["candidates"][key]
        run.mlflow.log_sibling(
            f"backbone@{key}",
            params={"model": candidate["model"], "weights": candidate["weights"]},
            metrics=numbers,
        )


if __name__ == "__main__":
    main()
