"""The candidates chosen for fine-tuning, as files: what the stages after the ranking read.

The rank stage writes three outputs under paths.selected: `selection.json` (the chosen
keys, best first, and their models), `features/` (a copy of the first one's features) and
`probe/<key>/` (each chosen candidate's probe head). Later stages depend on those alone,
each on what it reads, never on every candidate's outputs: adding a candidate that is not
chosen leaves them byte-identical, and a probe param reruns only LP-FT among them.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from transferlab import io
from transferlab.errors import UserError
from transferlab.params import Candidate, Model, Params, Paths

SELECTION_FILE = "selection.json"
FEATURES = "features"  # the first chosen candidate's features: the curves read them
HEADS = "probe"  # <key>/head.npz: each chosen candidate's probe head, for lpft


@dataclass(frozen=True)
class Selection:
    keys: tuple[str, ...]  # best first; the first is the one the curves and verdicts study
    models: dict[str, Candidate]

    @property
    def chosen(self) -> str:
        return self.keys[0]


def write_selection(paths: Paths, selection: Selection) -> None:
    """Write paths.selected from the candidates' own outputs (features, probe heads)."""
    folder = paths.selected
    features = folder / FEATURES
    shutil.rmtree(features, ignore_errors=True)  # a generated output: rewritten whole
    shutil.rmtree(folder / HEADS, ignore_errors=True)
    source = paths.features / selection.chosen
    for path in sorted(source.glob("*.npy")):
        with io.atomic_path(features / path.name) as tmp:
            shutil.copyfile(path, tmp)
    for key in selection.keys:
        head = io.method_dir(paths.methods, "probe", key) / io.HEAD_FILE
        with io.atomic_path(head_dir(paths, key) / io.HEAD_FILE) as tmp:
            shutil.copyfile(head, tmp)
    save_choice(paths, selection)


def save_choice(paths: Paths, selection: Selection) -> None:
    """selection.json alone: which candidates, best first, and their models."""
    models = {k: {"name": m.name, "weights": m.weights} for k, m in selection.models.items()}
    data = {"backbones": list(selection.keys), "models": models}
    io.write_json(paths.selected / SELECTION_FILE, data)


def read_selection(paths: Paths) -> Selection:
    path = paths.selected / SELECTION_FILE
    if not path.is_file():
        raise UserError(f"{path} is missing; run `dvc repro rank` first.")
    data = io.read_json(path)
    models = {k: Candidate(**v) for k, v in data["models"].items()}
    return Selection(tuple(data["backbones"]), models)


def selected_models(params: Params) -> dict[str, Model]:
    """The chosen candidates, best first, as buildable models (with the shared settings)."""
    selection = read_selection(params.paths)
    return {key: params.backbone.build(selection.models[key]) for key in selection.keys}


def chosen_model(params: Params, *, weights: str | None = None) -> Model:
    """The first chosen candidate's model; `weights` replaces its weights (e.g. "none")."""
    model = next(iter(selected_models(params).values()))  # best first: the chosen one
    return model if weights is None else replace(model, weights=weights)


def features_dir(paths: Paths) -> Path:
    return paths.selected / FEATURES


def head_dir(paths: Paths, key: str) -> Path:
    return paths.selected / HEADS / key
