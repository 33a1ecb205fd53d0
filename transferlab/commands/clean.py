"""`make clean`: delete what the stages generate under data/, never an input.

    python -m transferlab.commands.clean

Each deleted output comes back with `dvc checkout` (from the cache) or `dvc repro`. Inputs
(data/raw/, data.path) and anything else DVC tracks as an input are never among them. No
stage imports this module, so an edit here reruns nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from transferlab.params import Paths, load_params
from transferlab.shell import cli


def generated_outputs(paths: Paths) -> tuple[Path, ...]:
    """The stage outputs under data/ that `make clean` deletes."""
    return (
        paths.validated,
        paths.prepared,
        paths.features,
        paths.random_features,
        paths.selected,
        paths.methods,
    )


@cli
def main() -> None:
    for path in generated_outputs(load_params().paths):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


if __name__ == "__main__":
    main()
