"""MLflow tracking: the only module that imports mlflow.

Each stage that executes logs one run. Runs from one `dvc repro` / `dvc exp run` are
children of one parent run, found by a key that names the dvc process running them.
Where the store is, whether it answers and the lock its writers take turns with are in
store.py. Under torchrun only rank 0 logs.

Tracking never costs a result: when the store cannot be reached (checked in about two
seconds, before any MLflow client call) or fails mid-stage, the stage prints one warning
and carries on untracked; its params and metrics are in its DVC outputs regardless.
`tracking.required: true` turns that warning into an error.

It writes nothing that DVC tracks (a stage's outputs are publish.py's), which is why it is
not among any stage's deps in dvc.yaml.

MLflow is imported only when a run is opened: a process that logs nothing (a torchrun rank
other than 0, a stage whose store is unreachable) never pays for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transferlab import provenance, store
from transferlab.errors import UserError
from transferlab.params import FROM_PROBE, STRATEGIES, Finetune, Params, to_dict
from transferlab.store import redact
from transferlab.timeline import pipeline_key

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)
EXPERIMENT_NAME = "transfer-learning"
PIPELINE_KEY_TAG = "pipeline_key"
GIT_DIRTY_TAG = "git_dirty"
# MLflow's client defaults retry for minutes (7 retries, 120 s per request); a stage must
# not wait that long on a dead server. Applied only where the user has not set them.
CLIENT_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


class StageRun:
    """Logging handle for one stage's MLflow run; inactive (a no-op) when tracking is down."""

    def __init__(
        self,
        client: MlflowClient | None = None,
        run_id: str = "",
        parent_id: str = "",
        *,
        uri: str = "",
        required: bool = False,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.parent_id = parent_id
        self.uri = uri
        self.required = required

    @property
    def active(self) -> bool:
        return self.client is not None

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        now = _now_ms()
        flat = flatten(metrics)

        def send(client: MlflowClient) -> None:
            from mlflow.entities import Metric

            batch = [Metric(k, float(v), now, step) for k, v in flat.items()]
            for start in range(0, len(batch), 1000):
                client.log_batch(self.run_id, metrics=batch[start : start + 1000])

        self._safely(send)

    def log_artifact(self, path: Path | str, artifact_path: str | None = None) -> None:
        self._safely(lambda client: client.log_artifact(self.run_id, str(path), artifact_path))

    def set_tags(self, tags: dict[str, str]) -> None:
        def send(client: MlflowClient) -> None:
            from mlflow.entities import RunTag

            client.log_batch(self.run_id, tags=[RunTag(k, redact(str(v))) for k, v in tags.items()])

        self._safely(send)

    def log_to_parent(
        self,
        *,
        params: dict[str, Any],
        metrics: dict[str, Any],
        tags: dict[str, Any],
        description: str = "",
        artifacts: Sequence[tuple[Path, str]] = (),
    ) -> None:
        """Put the pipeline's params, final metrics, provenance and answer on the parent run,
        the run a user opens first in the MLflow UI: `description` becomes its description
        (MLflow's note) and `artifacts` ((path, artifact folder) pairs) its files."""

        def send(client: MlflowClient) -> None:
            from mlflow.entities import Metric, Param, RunTag
            from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

            now = _now_ms()
            note = {MLFLOW_RUN_NOTE: description} if description else {}
            client.log_batch(
                self.parent_id,
                metrics=[Metric(k, float(v), now, 0) for k, v in flatten(metrics).items()],
                params=[Param(k, redact(str(v))[:6000]) for k, v in flatten(params).items()],
                tags=[RunTag(k, redact(str(v))) for k, v in {**flatten(tags), **note}.items()],
            )
            for path, folder in artifacts:
                client.log_artifact(self.parent_id, str(path), folder)

        self._safely(send)

    def log_sibling(self, name: str, *, params: dict[str, Any], metrics: dict[str, float]) -> None:
        """One more finished run under the same parent, named `name` (e.g. one per backbone
        compared), holding `params` and `metrics`; tagged like this run."""

        def send(client: MlflowClient) -> None:
            from mlflow.entities import Metric, Param
            from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

            parent = client.get_run(self.run_id)
            tags = {k: v for k, v in parent.data.tags.items() if not k.startswith("mlflow.log")}
            tags[MLFLOW_RUN_NAME] = tags["stage"] = name
            run = client.create_run(parent.info.experiment_id, tags=tags, run_name=name)
            now = _now_ms()
            client.log_batch(
                run.info.run_id,
                metrics=[Metric(k, float(v), now, 0) for k, v in flatten(metrics).items()],
                params=[Param(k, redact(str(v))[:6000]) for k, v in flatten(params).items()],
            )
            client.set_terminated(run.info.run_id, "FINISHED")

        self._safely(send)

    def finish(self, status: str) -> None:
        """Close this run and the pipeline's parent run with `status`."""

        def close(client: MlflowClient) -> None:
            client.set_terminated(self.run_id, status)
            client.set_terminated(self.parent_id, status)

        self._safely(close)

    def _safely(self, action: Callable[[MlflowClient], object]) -> None:
        # A server that dies mid-stage costs the rest of the run's logging, never the stage.
        if self.client is None:
            return
        try:
            with store.store_lock(self.uri):
                action(self.client)
        except Exception as err:  # MLflow, HTTP and database errors all mean the same here
            self.client = None
            _lost(
                f"logging to MLflow at {redact(self.uri)} failed ({_reason(err)})",
                self.required,
            )


@contextlib.contextmanager
def stage_run(stage: str, params: Params, logged: dict[str, Any]) -> Iterator[StageRun]:
    """One child run for this stage under the pipeline's parent run (a no-op if unreachable),
    logging `logged`: the params sections the stage reads."""
    run = start_run(stage, logged, required=params.tracking.required)
    try:
        yield run
    except BaseException:
        with contextlib.suppress(UserError):  # the stage's own error is the one to report
            run.finish("FAILED")
        raise
    run.finish("FINISHED")


def start_run(stage: str, params: dict[str, Any], *, required: bool = False) -> StageRun:
    """Check the store quickly, then open the child run; an inactive StageRun if that fails."""
    uri = store.tracking_uri()
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: rank 0 logs for every rank
        return StageRun(None, uri=uri)
    for name, value in CLIENT_LIMITS.items():
        os.environ.setdefault(name, value)
    try:
        store.check_reachable(uri)
        client, run_id, parent_id = _open_run(uri, stage, flatten(params))
    except Exception as err:
        _lost(f"MLflow tracking at {redact(uri)} is unreachable ({_reason(err)})", required)
        return StageRun(None, uri=uri)
    return StageRun(client, run_id, parent_id, uri=uri, required=required)


def _open_run(uri: str, stage: str, flat: dict[str, Any]) -> tuple[MlflowClient, str, str]:
    """Create the stage's run (and the pipeline's parent run if this is its first stage) and
    log its params; returns (client, run id, parent run id)."""
    from mlflow.entities import Param
    from mlflow.tracking import MlflowClient
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    tags = run_tags(stage)
    if uri.startswith("sqlite:"):  # imported outside the lock: parallel writers import at once
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    with store.store_lock(uri):  # the store's first connection may create or migrate its tables
        client = MlflowClient(uri)
        experiment_id = _experiment_id(client)
        parent_id = _parent_run_id(client, experiment_id, tags)
        run = client.create_run(
            experiment_id, tags={**tags, MLFLOW_PARENT_RUN_ID: parent_id}, run_name=stage
        )
        client.log_batch(
            run.info.run_id, params=[Param(k, redact(str(v))[:6000]) for k, v in flat.items()]
        )
    return client, run.info.run_id, parent_id


def _lost(problem: str, required: bool) -> None:
    if required:
        raise UserError(f"{problem}; tracking.required is true, so the stage stops.")
    log.warning(
        "%s. This stage continues untracked; its params and metrics are still in its DVC "
        "outputs. Set tracking.required: true to make this an error.",
        problem,
    )


def _reason(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return redact(lines[0] if lines else type(err).__name__)[:300]


def run_tags(stage: str) -> dict[str, str]:
    """MLflow's standard source tags (user, entry point, git commit and repo URL), the stage,
    whether tracked files differ from the commit, and the DVC experiment name when set."""
    from mlflow.tracking.context.registry import resolve_tags

    tags = resolve_tags({"stage": stage})
    tags[GIT_DIRTY_TAG] = provenance.git_state()["dirty"]
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = os.environ["DVC_EXP_NAME"]
    return {k: redact(str(v)) for k, v in tags.items()}


def _parent_run_id(client: MlflowClient, experiment_id: str, tags: dict[str, str]) -> str:
    from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_RUN_NAME

    key = pipeline_key()
    found = client.search_runs(
        [experiment_id], filter_string=f"tags.{PIPELINE_KEY_TAG} = '{key}'", max_results=1
    )
    if found:
        return found[0].info.run_id
    commit = tags.get(MLFLOW_GIT_COMMIT, "unknown")
    name = tags.get("dvc_exp_name") or f"pipeline@{commit[:7]}"
    parent_tags = {k: v for k, v in tags.items() if k != "stage"}
    parent = client.create_run(
        experiment_id,
        tags={**parent_tags, PIPELINE_KEY_TAG: key, MLFLOW_RUN_NAME: name},
        run_name=name,
    )
    return parent.info.run_id


def _experiment_id(client: MlflowClient) -> str:
    from mlflow.exceptions import MlflowException

    name = os.environ.get("MLFLOW_EXPERIMENT_NAME", EXPERIMENT_NAME)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    # Beside the default store, not in the working directory (a temp copy for queued runs).
    location = None
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        location = (provenance.repo_root() / store.DEFAULT_ARTIFACTS).as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:  # another worker on a server created it first
        return client.get_experiment_by_name(name).experiment_id


def _now_ms() -> int:
    return int(time.time() * 1000)


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}, the form MLflow and DVC show."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def finetune_settings(config: Finetune, strategies: Sequence[str]) -> dict[str, Any]:
    """What a fine-tuning run of `strategies` reads: the shared settings and those strategies'
    own sections (not the others', nor the lists of which strategies the pipeline runs)."""
    own_sections = (*STRATEGIES, *FROM_PROBE, "strategies", "from_probe")
    return {k: v for k, v in to_dict(config).items() if k not in own_sections or k in strategies}
