"""python -m bench SUB-COMMAND: the benchmark's one entry point.

Every sub-command reads params.yaml (the only source of defaults) with `-S KEY=VALUE`
overrides applied as `dvc exp run -S` applies them, and runs the library's own functions.
Nothing here imports dvc or mlflow, so it runs on a bare GPU box with torch, timm, numpy
and scikit-learn. Parsing imports neither torch nor timm: `--help` runs nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
from pathlib import Path

from transferlab.params import DEVICES, PARAMS_FILE, Params, load_params
from transferlab.shell import cli

# Sections whose `device` key --device sets, so every step runs where it says.
DEVICE_SECTIONS = ("extract", "probe", "finetune")
# speed: how much it measures (bench.speed.SIZES); what data and model, params say.
SIZES = {
    "tiny": "seconds, for tests: no figures",
    "quick": "capped splits, a few minutes on 2 CPU cores (default off CUDA)",
    "full": "every prepared image, more and longer samples (default on CUDA)",
}

COMMANDS = {
    "speed": "model-only ceilings against the project's code paths, the probe against "
    "scikit-learn, and the usual PIL + DataLoader path; writes --out (reports/bench.json)",
    "pipeline": "prepare -> extract -> probe -> fine-tune each strategy, each scored on test, "
    "through the stages' library functions; writes --out after every step",
    "variation": "how much two identical runs (extraction and fine-tuning) differ on this device",
}


def parser() -> argparse.ArgumentParser:
    """The whole command line; none of its defaults repeats a param."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-S",
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a param as `dvc exp run -S` does (repeatable; later ones win), "
        "e.g. -S finetune.batch_size=128 -S data.train_per_class=null",
    )
    common.add_argument(
        "--device",
        choices=DEVICES,
        help="run every step here: sets extract.device, probe.device and finetune.device "
        "(default: those params)",
    )
    common.add_argument("--params", type=Path, default=PARAMS_FILE, help="the params file")
    common.add_argument(
        "--backbone",
        metavar="KEY",
        help="the candidate to measure, a key of params' backbones (default: the first)",
    )

    top = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub = {
        name: commands.add_parser(name, parents=[common], help=text, description=text)
        for name, text in COMMANDS.items()
    }

    speed = sub["speed"]
    mode = speed.add_mutually_exclusive_group()
    for name, text in SIZES.items():
        mode.add_argument(f"--{name}", dest="size", action="store_const", const=name, help=text)
    speed.set_defaults(size=None)
    speed.add_argument(
        "--compare-max-iter",
        type=int,
        help="iterations of the single-C fits compared with scikit-learn (default: probe.max_iter)",
    )
    speed.add_argument("--sklearn-grid", action="store_true", help="also time sklearn's grid")
    for name, out in (("speed", "reports/bench.json"), ("pipeline", "reports/pipeline.json")):
        sub[name].add_argument("--out", type=Path, default=Path(out), help="the JSON written")
    variation = sub["variation"]
    variation.add_argument("--strategy", help="default: the first of finetune.strategies")
    variation.add_argument("--out", type=Path, help="also write the result as JSON here")
    return top


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return parser().parse_args(argv)


def overrides(args: argparse.Namespace) -> list[str]:
    """-S in order, then --device for every section that has one (it wins)."""
    device = [f"{section}.device={args.device}" for section in DEVICE_SECTIONS]
    return [*args.overrides, *(device if args.device else [])]


def configure(args: argparse.Namespace) -> Params:
    params = load_params(args.params, overrides(args))
    if args.backbone is None:
        return params
    params.model(args.backbone)  # a known candidate, or a one-line error naming them
    return dataclasses.replace(params, backbones={args.backbone: params.backbones[args.backbone]})


@cli
def main(argv: list[str] | None = None) -> dict:
    """Parse, load the params, then import and run the sub-command (torch loads here)."""
    args = parse_args(argv)
    params = configure(args)
    return importlib.import_module(f"bench.{args.command}").run(params, args)
