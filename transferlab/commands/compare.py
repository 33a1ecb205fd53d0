"""Experiments side by side, in 120 columns: the params that differ first, then the headline.

    python -m transferlab.commands.compare [EXP ...]        (make compare [EXPS="k5 lr-list"])

One row per experiment of the current commit (as `dvc exp show` lists them, the workspace
and the commit included; or only the EXP names given, with the commit): the params whose
values differ between the rows, then the recommended method and each method's test accuracy
(reports/headline.json). Params that do not fit are listed under the table. The detail of
one experiment, with its verdicts and stage times, is `make results EXP=name`.
"""

from __future__ import annotations

import argparse
import json

from transferlab.commands.results import WIDTH, clip
from transferlab.errors import UserError
from transferlab.params import PARAMS_FILE, load_params
from transferlab.shell import cli

CELL = 16  # widest value shown in a param column
RECOMMENDED, ACCURACY, DATA = "recommended", "accuracy.", "data_content"  # headline.json


def rows(names: list[str]) -> list[dict]:
    """`dvc exp show`'s rows as dicts (workspace, commit, experiments), filtered to `names`
    (and the commit) when given."""
    import dvc.api

    try:
        found = dvc.api.exp_show()
    except Exception as err:  # dvc's own: not a DVC repo, no commit yet
        raise UserError(f"cannot list experiments: {str(err).splitlines()[0]}") from None
    for row in found:
        row["name"] = row.get("Experiment") or row["rev"]
    if names:
        unknown = set(names) - {row["name"] for row in found}
        if unknown:
            raise UserError(f"no experiment named {', '.join(sorted(unknown))} on this commit.")
        found = [r for r in found if r["name"] in names or r["typ"] == "baseline"]
    return found


def by_data(found: list[dict], sections: set[str]) -> list[str]:
    """One table per data set the rows were measured on (headline.json's DATA: the source's
    content digest), the commit's first: runs on other data are no variants of the same
    experiment. One table, as before, when every row used the same data (or none says)."""
    groups: dict[str, list[dict]] = {}
    for row in sorted(found, key=lambda r: r.get("typ") != "baseline"):  # stable: commit first
        groups.setdefault(str(row.get(DATA) or "-"), []).append(row)
    if len(groups) == 1:
        return table(found, sections)
    lines: list[str] = []
    for digest, members in groups.items():
        names = ", ".join(row["name"] for row in members)
        lines += [clip(f"data {digest}: {names}"), *table(members, sections), ""]
    return lines + ["Each table holds the runs on one data set: compare within a table."]


def table(found: list[dict], sections: set[str]) -> list[str]:
    """The comparison as text lines of at most WIDTH characters. `sections`: params.yaml's
    top-level keys, which tell a param column from a metric or a dependency's hash."""
    params = [
        key
        for key in sorted({k for row in found for k in row})
        if key.split(".")[0] in sections
        and "/" not in key
        and len({_cell(row.get(key)) for row in found}) > 1
    ]
    methods = sorted({k for row in found for k in row if k.startswith(ACCURACY)})
    columns = {"experiment": [row["name"] for row in found]}
    columns[RECOMMENDED] = [_cell(row.get(RECOMMENDED)) for row in found]
    for key in methods:
        columns[key.removeprefix(ACCURACY)] = [_number(row.get(key)) for row in found]
    used = sum(_width(h, c) + 2 for h, c in columns.items())
    shown, hidden = {}, []
    for key in params:
        cells = [_cell(row.get(key)) for row in found]
        if used + _width(key, cells) + 2 <= WIDTH:
            shown[key] = cells
            used += _width(key, cells) + 2
        else:
            hidden.append(key)
    ordered = {"experiment": columns.pop("experiment"), **shown, **columns}
    widths = {h: _width(h, c) for h, c in ordered.items()}
    lines = ["  ".join(f"{h:<{widths[h]}}" for h in ordered).rstrip()]
    for i in range(len(found)):
        lines.append("  ".join(f"{c[i]:<{widths[h]}}" for h, c in ordered.items()).rstrip())
    if not params:
        lines.append("(no param differs between these rows)")
    for key in hidden:
        values = ", ".join(f"{row['name']}: {_cell(row.get(key))}" for row in found)
        lines.append(clip(f"also differs: {key} ({values})"))
    return lines


def _cell(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # DVC reads params.yaml's 5 back as 5.0
    text = "-" if value is None else value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= CELL else text[: CELL - 3] + "..."


def _number(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _width(header: str, cells: list[str]) -> int:
    return max(len(header), *(len(c) for c in cells))


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m transferlab.commands.compare", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("names", nargs="*", help="dvc exp names (default: all on this commit)")
    args = parser.parse_args(argv)
    sections = set(load_params(PARAMS_FILE).__dataclass_fields__)
    print("\n".join(by_data(rows(args.names), sections)))


if __name__ == "__main__":
    main()
