"""The commands dvc.yaml runs, one module per stage: `python -m stages.<stage>`.

Before any of them starts: check that this Python has the project installed (a stage run by
another interpreter, a `python` outside the project's environment, says so in one line), and
put the CPU pins that make results reproducible across machines in the environment, before
torch is imported (transferlab/device/cpu.py).
"""

import importlib.util
import sys

for _name in ("transferlab", "torch", "timm", "yaml"):
    if importlib.util.find_spec(_name) is None:
        sys.exit(
            f"error: {sys.executable} cannot import {_name}: the project is not installed for "
            "this Python. Activate its environment (`source .venv/bin/activate`, made by "
            "`make install`) or run the pipeline with `make run`."
        )
# Not mlflow: the bench runs these stages where it is not installed, and tracking imports it
# only to open a run (a stage without it says so in one warning and runs untracked).

from transferlab.device.cpu import apply_cpu_pins  # noqa: E402  (after the check above)

apply_cpu_pins()
