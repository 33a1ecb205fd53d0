"""Install packages into this venv with uv, from the sources pip is configured to use.

uv unpacks wheels and compiles bytecode in parallel: the project's set-up took 58 s with it
against 103 s with pip on the 2-core development machine (docs/benchmarks.md). But uv reads
no pip configuration: where pip is told to look in a local index or folder (where a pinned
torch build lies, say), uv would download from PyPI instead. So pip's own settings are
handed on: index-url, extra-index-url, find-links and constraint, as `pip config list`
reports them from its files and PIP_* variables, ranked as pip ranks them (the environment
over the install section over global). uv weighs every index alike, as pip does.

    python tools/uv_install.py [uv pip install arguments]   (with the venv's python)
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

# pip's key -> uv's flag; the list-valued ones hold several values separated by spaces.
FLAGS = {
    "index-url": ("--index-url", False),
    "extra-index-url": ("--extra-index-url", True),
    "find-links": ("--find-links", True),
    "constraint": ("--constraint", True),
}
RANK = {"global": 0, "install": 1, ":env:": 2}  # a higher rank overrides a lower one


def pip_sources(config_lines: list[str]) -> list[str]:
    """uv flags for the package sources in `pip config list` output lines."""
    chosen: dict[str, tuple[int, str]] = {}
    for line in config_lines:
        name, sep, value = line.partition("=")
        section, _, key = name.rpartition(".")
        if not sep or key not in FLAGS or section not in RANK:
            continue
        if key not in chosen or RANK[section] >= chosen[key][0]:
            chosen[key] = (RANK[section], ast.literal_eval(value))
    flags = []
    for key, (flag, many) in FLAGS.items():
        if key in chosen:
            value = chosen[key][1]
            for item in value.split() if many else [value]:
                flags += [flag, item]
    return flags


def uv_command(args: list[str], config_lines: list[str]) -> list[str]:
    """The whole `uv pip install` command for this venv's python."""
    python = Path(sys.executable)
    return [
        str(python.parent / "uv"),
        *("pip", "install", "--quiet", "--python", str(python), "--compile-bytecode"),
        *("--index-strategy", "unsafe-best-match"),
        *pip_sources(config_lines),
        *args,
    ]


def main() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    )
    command = uv_command(sys.argv[1:], listed.stdout.splitlines())
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
