from tests.conftest import REPO, dvc_stages
from transferlab.evaluation.drivers.evaluate import (
    method_names,
    timed_stages,
)
from transferlab.params import to_dict


def test_evaluate_reads_every_method_a_stage_writes_in_pipeline_order(params):
    # the methods are what dvc.yaml's stages write under paths.methods, in their order
    stages = dvc_stages((REPO / "dvc.yaml").read_text(), to_dict(params))
    written = [
        out.removeprefix("${paths.methods}/").split("/")[0]
        for spec in stages.values()
        for out in (o if isinstance(o, str) else next(iter(o)) for o in spec.get("outs", []))
        if out.startswith("${paths.methods}/")
    ]
    assert method_names(params) == list(dict.fromkeys(written))


def test_the_timeline_expects_a_timing_from_every_stage_dvc_yaml_runs(params):
    stages = set(dvc_stages((REPO / "dvc.yaml").read_text(), to_dict(params)))
    # evaluate adds its own timing as it writes the timeline. Each timing carries the stage's
    # DVC name, so `dvc repro <name>` takes what the report shows.
    assert timed_stages(params) == stages - {"evaluate"}
