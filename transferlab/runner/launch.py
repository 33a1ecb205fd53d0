"""Start a stage command, warm, on one process, or on `nproc` through torchrun's launcher,
whose own traceback is kept out of the user's way.

    python -m transferlab.runner.launch [NPROC] -m MODULE [ARGS...]

Every command in dvc.yaml runs through here. On one process (NPROC 1, or none given) the
module runs in a process that already holds torch and MLflow (runner/warm.py), so a stage
pays neither their imports nor the launcher's second Python process; dvc.yaml stays static
(`launch.nproc_per_node` is templated into the commands that can use more). A failing worker
has already printed its one-line `error: …`; the launcher then exits with the worker's code
instead of printing torchrun's ChildFailedError traceback.
"""

from __future__ import annotations

import logging
import os
import sys

from transferlab.runner import warm

USAGE = "usage: python -m transferlab.runner.launch [NPROC] -m MODULE [ARGS...]"


def main(argv: list[str]) -> int:
    if argv[:1] == ["-m"]:
        argv = ["1", *argv]
    if len(argv) < 3 or argv[1] != "-m" or not argv[0].isdigit() or int(argv[0]) < 1:
        print(f"error: {USAGE}", file=sys.stderr)
        return 2
    nproc, module, args = int(argv[0]), argv[2], argv[3:]
    if nproc == 1:
        return warm.run(module, args)
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    # The workers report their own errors; the agent's log lines and traceback repeat them.
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torchrun's own default, set without its banner
    try:
        torchrun.main(["--standalone", "--nproc-per-node", str(nproc), "-m", module, *args])
    except ChildFailedError as failed:
        codes = [f.exitcode for f in failed.failures.values() if f.exitcode and f.exitcode > 0]
        return codes[0] if codes else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
