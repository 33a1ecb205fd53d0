"""publish.Stage: what a stage writes for DVC, and the same told to MLflow."""

from mlflow.tracking import MlflowClient

from tests.conftest import REPO
from transferlab import io, publish, timeline, tracking
from transferlab.params import load_params

SHIPPED = load_params(REPO / "params.yaml")


def runs(uri: str):
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    return client, client.search_runs([experiment.experiment_id])


def test_publish_logs_the_timing_numbers_and_writes_the_run_that_measured_them(mlflow_store):
    with publish.stage("knn@tiny", SHIPPED, {}) as stage:
        stage.publish()
    _, found = runs(mlflow_store)
    knn = {r.info.run_name: r for r in found}["knn@tiny"]
    assert knn.info.status == "FINISHED"
    assert {"time.ready_s", "time.total_s", "time.started"} <= set(knn.data.metrics)
    assert "time.warm" not in knn.data.metrics  # a flag, not a measurement
    written = io.read_json(SHIPPED.paths.timings / "knn@tiny.json")  # relative: in tmp
    assert written["run"] == timeline.pipeline_key()
