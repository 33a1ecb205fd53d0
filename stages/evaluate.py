"""Stage evaluate: test metrics, transfer verdicts, DVC plots, figures and the report."""

from __future__ import annotations

from transferlab import tracking
from transferlab.errors import cli
from transferlab.evaluation.metrics import evaluate, method_names
from transferlab.params import load_params


@cli
def main() -> None:
    params = load_params()
    paths = params.paths
    with tracking.stage_run("evaluate", params, {"methods": method_names(params)}) as run:
        metrics, figures = evaluate(params)
        verdicts = metrics["transfer"]
        run.log_metrics({f"{n}.gain": v["gain"] for n, v in verdicts.items()})
        run.set_tags({f"verdict.{n}": v["verdict"] for n, v in verdicts.items()})
        run.publish(
            metrics={m: v for m, v in metrics.items() if m != "transfer"},
            artifacts=[(path, "report") for path in (paths.metrics, paths.report, *figures)],
        )
    for method in method_names(params):
        values = metrics[method]
        print(f"{method:>10}: accuracy {values['accuracy']:.4f}  ECE {values['ece']:.4f}")
    for name, v in verdicts.items():
        print(f"{name:>24}: {v['verdict']} (gain {v['gain']:+.4f}, spread {v['spread']:.4f})")


if __name__ == "__main__":
    main()
