"""DVC plots a reader can read, offline: the plot definitions in dvc.yaml, their templates in
.dvc/plots/, the offline page template plots/offline.html and the JavaScript it vendors.

No browser here: plots/check_offline.sh renders the page in headless Chromium with the
network cut off (it needs Chromium, which CI does not install).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml

from transferlab.evaluation.drivers import rank
from transferlab.evaluation.rendering import tables
from transferlab.params import Verdict, load_paths

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / ".dvc" / "plots"
PLOTS = ROOT / "plots"
DVC = Path(sys.executable).with_name("dvc")

# The anchors DVC 3 (dvc_render's VegaRenderer) fills in a custom template.
FILLED_ANCHORS = {"title", "x", "y", "x_label", "y_label", "data"}
OPTIONAL_ANCHORS = {
    "color", "column", "group_by_x", "group_by_y", "group_by", "pivot_field",
    "plot_height", "plot_width", "row", "shape", "stroke_dash", "tooltip", "zoom_and_pan",
}  # fmt: skip
BUILTIN_TEMPLATES = {
    "simple", "linear", "confusion", "confusion_normalized", "scatter", "scatter_jitter",
    "smooth", "bar_horizontal_sorted", "bar_horizontal",
}  # fmt: skip


def load_params(changes: dict | None = None) -> dict:
    """params.yaml with `changes`, and the paths dvc.yaml templates (its vars)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["paths"] = load_paths(ROOT / "params.yaml")
    for section, values in (changes or {}).items():
        params[section] = {**params[section], **values}
    return params


def lookup(params: dict, dotted: str):
    value = params
    for key in dotted.split("."):
        value = value[key]
    return value


def resolve(node, params: dict):
    """dvc.yaml's ${...} interpolation: a string that is one ${x} becomes x's value (a list
    stays a list); ${x} inside a longer string becomes its text. Keys resolve too."""
    if isinstance(node, dict):
        return {resolve(k, params): resolve(v, params) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, params) for v in node]
    if isinstance(node, str):
        whole = re.fullmatch(r"\$\{\s*([\w.]+)\s*\}", node)
        if whole:
            return lookup(params, whole.group(1))
        return re.sub(r"\$\{\s*([\w.]+)\s*\}", lambda m: str(lookup(params, m.group(1))), node)
    return node


def plot_definitions(params: dict) -> dict[str, dict]:
    """Every plot dvc.yaml defines, top-level and stage outputs, resolved against params:
    {plot id: its properties}."""
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    result = {}
    for entry in dvc_yaml.get("plots", []):
        entry = {entry: {}} if isinstance(entry, str) else entry
        (plot_id, props), *_ = resolve(entry, params).items()
        result[plot_id] = props or {}
    for stage in dvc_yaml["stages"].values():
        for entry in stage.get("plots", []):
            entry = {entry: {}} if isinstance(entry, str) else entry
            (plot_id, props), *_ = resolve(entry, params).items()
            result[plot_id] = props or {}
    return result


def y_columns(plot_id: str, props: dict) -> list[tuple[str, str]]:
    """(file, column) pairs a definition draws, as DVC reads its y."""
    y = props.get("y")
    if isinstance(y, dict):
        return [
            (f, c) for f, cols in y.items() for c in ([cols] if isinstance(cols, str) else cols)
        ]
    if isinstance(y, str):
        return [(plot_id, y)]
    return [(plot_id, c) for c in (y or [])]


def template(name: str) -> dict:
    return json.loads((TEMPLATES / f"{name}.json").read_text())


def anchors(node) -> set[str]:
    return {a.lower() for a in re.findall(r"<DVC_METRIC_([A-Z_]+)>", json.dumps(node))}


def walk(node):
    """Every dict inside a Vega-Lite spec: layers, facet specs, encodings."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def encodings(spec: dict, channel: str) -> list[dict]:
    return [d["encoding"][channel] for d in walk(spec) if channel in d.get("encoding", {})]


SHIPPED = plot_definitions(load_params())
CURVES = {pid: p for pid, p in SHIPPED.items() if p.get("template") == "data_efficiency"}


def test_every_data_efficiency_csv_has_a_data_efficiency_plot():
    paths = load_params()["paths"]
    assert len(CURVES) == 2
    files = {f for p in CURVES.values() if isinstance(p["y"], dict) for f in p["y"]}
    files |= {pid for pid, p in CURVES.items() if not isinstance(p["y"], dict)}
    assert files == {
        f"{paths['curves']}/linear/data_efficiency.csv",
        f"{paths['curves']}/knn/data_efficiency.csv",
        f"{paths['curves_finetune']}/data_efficiency.csv",  # its columns: curves.finetune
    }


@pytest.mark.parametrize("plot_id", sorted(CURVES))
def test_data_efficiency_plots_have_titles_labels_and_shots_on_x(plot_id):
    props = CURVES[plot_id]
    assert props["x"] == "shots"
    assert props.get("title", "").strip()
    # DVC's defaults would be "shots" and, with several y columns, "y": neither says enough
    assert props.get("x_label") and props["x_label"] not in {"x", "shots", "step"}
    assert "images per class" in props["x_label"] and "log" in props["x_label"]
    assert props.get("y_label") and props["y_label"] not in {"y", "dvc_inferred_y_value"}
    assert "accuracy" in props["y_label"]


def test_data_efficiency_template_has_a_log_x_axis_with_the_labels_of_dvc_yaml():
    spec = template("data_efficiency")
    (x,) = encodings(spec, "x")
    assert x["scale"]["type"] == "log"
    assert x["type"] == "quantitative"
    assert x["title"] == "<DVC_METRIC_X_LABEL>"
    # the shot counts that crowded a linear axis each get a labelled tick
    assert {1, 5, 10, 25} <= set(x["axis"]["values"])
    ys = encodings(spec, "y")
    assert ys and all(y["title"] == "<DVC_METRIC_Y_LABEL>" for y in ys)
    assert spec["title"]["text"] == "<DVC_METRIC_TITLE>"
    # x is computed from DVC's x column: the CSV's values arrive as strings
    assert any(
        t.get("as") == x["field"] and "<DVC_METRIC_X>" in t.get("calculate", "")
        for t in spec["transform"]
    )


def test_data_efficiency_series_are_told_apart_by_colour():
    spec = template("data_efficiency")
    (colour,) = encodings(spec, "color")
    assert colour["type"] == "nominal"
    series = next(t for t in spec["transform"] if t.get("as") == colour["field"])
    assert "datum.field" in series["calculate"]  # DVC's name of each y column
    # revisions (dvc plots diff) by dash, not series: one colour per series throughout
    assert all(d["field"] == "rev" for d in encodings(spec, "strokeDash"))
    assert "stroke_dash" not in anchors(spec) and "color" not in anchors(spec)


def test_training_and_confusion_plots_name_the_method_and_have_labels():
    stage = {pid: p for pid, p in SHIPPED.items() if pid not in CURVES}
    assert stage, "the evaluate stage declares plots"
    for plot_id, props in stage.items():
        assert props.get("title", "").strip(), plot_id
        assert props.get("x_label") and props.get("y_label"), plot_id
        assert props["y_label"] not in {"y", props.get("y")}, plot_id
        name = props.get("template", "linear")
        assert name not in BUILTIN_TEMPLATES, f"{plot_id}: a built-in template names no method"
        spec = template(name)
        if name == "backbones":  # one CSV, a row per backbone: its column colours each point
            assert [c["field"] for c in encodings(spec, "color")] == ["backbone"], plot_id
            continue
        if name == "training":  # one CSV per value, every method in it: its method column
            assert "datum.method" in json.dumps(spec), plot_id
            continue
        # DVC makes one plot per CSV, one CSV per method: the method comes from the file name
        assert "datum.filename" in json.dumps(spec), plot_id
    training = template("training")
    (colour,) = encodings(training, "color")
    method = next(t for t in training["transform"] if t.get("as") == colour["field"])
    assert "datum.method" in method["calculate"]
    (x,) = encodings(training, "x")
    assert x["title"] == "<DVC_METRIC_X_LABEL>" and x["type"] == "quantitative"
    # revisions (dvc plots diff) by dash, so a method keeps its colour across them
    assert [d["field"] for d in encodings(training, "strokeDash")] == ["rev"]


def test_training_plots_are_the_files_evaluate_writes_one_chart_per_value():
    """The training curves' CSVs are named in transferlab/evaluation/rendering/report.py; dvc.yaml
    must declare exactly those, one plot (so one shared axis) per value."""
    plots = load_params()["paths"]["plots"]
    training = {pid: p for pid, p in SHIPPED.items() if p.get("template") == "training"}
    written = tables.training_tables({"full": [{"epoch": 0, "train_loss": 1, "val_accuracy": 0}]})
    assert set(training) == {f"{plots}/{name}" for name in written}
    for column in tables.TRAINING_COLUMNS:
        assert training[f"{plots}/{column}.csv"]["y"] == column


def test_backbones_template_draws_the_y_columns_interval_and_spans_it():
    spec = template("backbones")
    text = json.dumps(spec)
    # the columns rank.table_csv writes beside each accuracy
    assert "<DVC_METRIC_Y>_low" in text and "<DVC_METRIC_Y>_high" in text
    (bar,) = [layer for layer in spec["layer"] if layer["mark"]["type"] == "errorbar"]
    assert bar["encoding"]["y"]["field"] == "low" and bar["encoding"]["y2"]["field"] == "high"
    # one y scale over bars and points: the axis spans the intervals, not the points alone
    assert "resolve" not in spec
    assert all(y["scale"] == {"zero": False} for y in encodings(spec, "y"))
    # no text beside the points (labels collided): the backbone is the colour, in a legend
    assert all(layer["mark"]["type"] != "text" for layer in spec["layer"])
    assert [s["field"] for s in encodings(spec, "shape")] == ["rev"]


@pytest.mark.parametrize("name", sorted(p.stem for p in TEMPLATES.glob("*.json")))
def test_templates_use_only_anchors_dvc_fills(name):
    spec = template(name)
    assert spec["$schema"].endswith("/vega-lite/v5.json")  # the vendored Vega-Lite is v5
    used = anchors(spec)
    assert "data" in used and spec["data"] == {"values": "<DVC_METRIC_DATA>"}
    assert used <= FILLED_ANCHORS | OPTIONAL_ANCHORS, used - FILLED_ANCHORS - OPTIONAL_ANCHORS
    # an optional anchor makes DVC drop the filename and field columns the templates read
    assert not used & OPTIONAL_ANCHORS


@pytest.mark.parametrize("finetune", [[], ["full"], ["full", "scratch"]])
def test_no_plot_is_empty(finetune):
    """Fine-tuning curves join the linear-probe plot: an empty curves.finetune (the shipped
    default) adds no series there, and no plot is left with none."""
    params = load_params({"curves": {"finetune": finetune}})
    if finetune == []:
        assert load_params()["curves"]["finetune"] == []  # the shipped params.yaml
    definitions = plot_definitions(params)
    for plot_id, props in definitions.items():
        columns = y_columns(plot_id, props)
        assert columns and all(column for _, column in columns), f"{plot_id} draws nothing"
    paths = params["paths"]
    (linear,) = [p for pid, p in definitions.items() if "linear" in pid and "curves" in pid]
    from_finetune = [c for f, c in y_columns("", linear) if paths["curves_finetune"] in f]
    assert from_finetune == finetune


class Scripts(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.sources.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.links.append(attrs["href"])


def test_offline_template_loads_only_vendored_scripts_that_exist():
    page = (PLOTS / "offline.html").read_text()
    assert "{plot_divs}" in page
    # DVC puts its CDN <script> tags where a template says {scripts}: this one must not
    assert "{scripts}" not in page
    assert not re.search(r"https?://|//cdn|jsdelivr|unpkg", page)
    parser = Scripts()
    parser.feed(page)
    assert not parser.links
    names = [Path(src).name for src in parser.sources]
    assert names == ["vega.min.js", "vega-lite.min.js", "vega-embed.min.js"]  # load order
    out_dir = ROOT / "dvc_plots"  # DVC's default output folder: the page is its index.html
    for src in parser.sources:
        assert not re.match(r"[a-z]+:|/", src), src
        assert (out_dir / src).resolve() == (PLOTS / "vendor" / Path(src).name).resolve()
        assert (PLOTS / "vendor" / Path(src).name).stat().st_size > 10_000


def test_dvc_config_makes_the_offline_template_the_default():
    config = (ROOT / ".dvc" / "config").read_text()
    match = re.search(r"^\[plots\]\s*$(.*?)(?=^\[|\Z)", config, re.M | re.S)
    assert match, "no [plots] section in .dvc/config"
    value = re.search(r"html_template\s*=\s*(\S+)", match.group(1)).group(1)
    # DVC reads a relative html_template against .dvc/
    assert (ROOT / ".dvc" / value).resolve() == (PLOTS / "offline.html").resolve()


def readme_table() -> dict[str, tuple[str, str, str, str]]:
    rows = {}
    for line in (PLOTS / "README.md").read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("vega") and re.fullmatch(r"[\d.]+", cells[1]):
            rows[cells[0]] = tuple(cells[1:])
    return rows


VERSION_IN_BUILD = {  # how each minified build states its own version
    "vega": r't\.version="([\d.]+)"',
    "vega-lite": r'"use strict";var \w+="([\d.]+)"',
    "vega-embed": r'const \w+="([\d.]+)"',
}


def test_vendored_files_match_the_versions_and_licences_in_plots_readme():
    table = readme_table()
    assert set(table) == set(VERSION_IN_BUILD)
    for package, (version, licence, file, sha256) in table.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), "pin exact versions"
        path = PLOTS / file
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha256, f"{file} differs from plots/README.md"
        found = re.search(VERSION_IN_BUILD[package], data[:400_000].decode()) or re.search(
            VERSION_IN_BUILD[package], data.decode()
        )
        assert found and found.group(1) == version, (package, found and found.group(1))
        assert licence == "BSD-3-Clause"
        text = (PLOTS / "vendor" / f"LICENSE.{package}").read_text()
        assert "Redistribution and use in source and binary forms" in text
        assert "Neither the name of the copyright holder" in text  # clause 3: BSD-3
    assert (PLOTS / "vendor" / "THIRD_PARTY_LICENSES.txt").stat().st_size > 1000
    vendored = {p.name for p in (PLOTS / "vendor").iterdir()}
    assert vendored == {
        "vega.min.js", "vega-lite.min.js", "vega-embed.min.js", "THIRD_PARTY_LICENSES.txt",
        "LICENSE.vega", "LICENSE.vega-lite", "LICENSE.vega-embed",
    }  # fmt: skip


# --- DVC itself, on a tiny workspace with the project's definitions (a few seconds) ---


def write_curve(path: Path, series: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["shots", *[f"{s}{x}" for s in series for x in ("", "_std")]])
        for i, n in enumerate([1, 5, 10, 25, 270]):
            writer.writerow([n, *[v for _ in series for v in (f"{0.3 + 0.1 * i:.6f}", "0.01")]])


@pytest.fixture(scope="module")
def tiny_workspace(tmp_path_factory) -> Path:
    if not DVC.exists():
        pytest.skip("no dvc beside this Python")
    ws = tmp_path_factory.mktemp("plots")
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, ws / name)
    shutil.copytree(ROOT / ".dvc" / "plots", ws / ".dvc" / "plots")
    shutil.copy(ROOT / ".dvc" / "config", ws / ".dvc" / "config")
    shutil.copytree(PLOTS / "vendor", ws / "plots" / "vendor")
    shutil.copy(PLOTS / "offline.html", ws / "plots" / "offline.html")
    paths = load_params()["paths"]
    for probe in ("linear", "knn"):
        write_curve(
            ws / paths["curves"] / probe / "data_efficiency.csv",
            [f"{kind}_{probe}" for kind in ("pretrained", "random_init", "raw_pixels")],
        )
    write_curve(ws / paths["curves_finetune"] / "data_efficiency.csv", [])  # the default
    (ws / paths["plots"]).mkdir(parents=True, exist_ok=True)
    for name, text in tables.training_tables(HISTORIES).items():  # as evaluate writes them
        (ws / paths["plots"] / name).write_text(text)
    folder = ws / paths["plots"] / "confusion"
    folder.mkdir(parents=True)
    (folder / "full.csv").write_text("actual,predicted\nBag,Bag\nBag,Coat\nCoat,Coat\n")
    (ws / paths["plots"] / "backbones.csv").write_text(tables.table_csv(backbones_record()))
    return ws


HISTORIES = {  # two fine-tuned methods, two epochs each
    method: [
        {"epoch": e, "train_loss": loss - 0.1 * e, "val_accuracy": 0.5 + 0.1 * e} for e in (1, 2)
    ]
    for method, loss in (("full", 0.5), ("scratch", 2.0))
}


def backbones_record() -> dict:
    """Two candidates as rank.with_finetuned leaves them, on 200 test images."""
    accuracies = {"lite0": (0.82, 0.80, 600.0), "lite1": (0.84, 0.81, 500.0)}
    candidates = {
        key: {"probe_accuracy": probe, "knn_accuracy": knn, "images_per_s": rate}
        for key, (probe, knn, rate) in accuracies.items()
    }
    correct = {
        column: {
            key: [np.arange(200) < round(row[column] * 200)] for key, row in candidates.items()
        }
        for column in rank.PROBE_ACCURACIES
    }
    intervals = rank.probe_intervals(correct, config=Verdict(confidence=0.95, adjust="holm"))
    return {"order": list(accuracies), "candidates": candidates, "intervals": intervals}


def dvc(ws: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(DVC), *args], cwd=ws, capture_output=True, text=True, timeout=120, check=True
    )


def test_dvc_fills_the_templates_with_log_x_titles_labels_and_no_empty_plot(tiny_workspace):
    shown = json.loads(dvc(tiny_workspace, "plots", "show", "--json").stdout)
    assert not shown.get("errors"), shown.get("errors")
    data = shown["data"]
    # 2 curves, confusion (one method), train_loss, val_accuracy (every method), backbones
    assert len(data) == 6
    for plot_id, [plot] in data.items():
        content = plot["content"]
        assert content and "<DVC_METRIC" not in json.dumps(content), plot_id
        assert content["data"]["values"], f"{plot_id} is empty"
        assert content["title"]["text"], plot_id
    curves = {pid: p["content"] for pid, [p] in data.items() if "data_efficiency" in pid}
    assert len(curves) == 2
    for spec in curves.values():
        (x,) = encodings(spec, "x")
        assert x["scale"]["type"] == "log" and "images per class" in x["title"]
        assert {y["title"] for y in encodings(spec, "y")} == {"test accuracy"}
        fields = {v["field"] for v in spec["data"]["values"]}
        assert len(fields) == 3 and len({f.rsplit("_", 1)[1] for f in fields}) == 1, fields


def training_and_backbone_plots(shown: dict, plots: str) -> tuple[dict, dict, dict]:
    """The train-loss, val-accuracy and backbones charts in `dvc plots show --json`'s data,
    failing unless each training value has one chart for all methods, not one per method."""
    training = {}
    for column in tables.TRAINING_COLUMNS:
        charts = [p for pid, plot in shown.items() if column in pid for p in plot]
        assert len(charts) == 1, f"{column}: {len(charts)} charts, not one for all methods"
        training[column] = charts[0]["content"]
    (backbones,) = shown[f"{plots}/backbones.csv"]
    return training["train_loss"], training["val_accuracy"], backbones["content"]


def assert_intervals_around_accuracies(values: list[dict]) -> None:
    assert values
    for v in values:  # DVC hands the CSV's cells over as strings
        for column in rank.PROBE_ACCURACIES:
            low, accuracy, high = (float(v[column + s]) for s in ("_low", "", "_high"))
            assert low <= accuracy <= high and low < high, v


def test_dvc_draws_every_method_on_one_training_chart_and_the_backbone_intervals(
    tiny_workspace,
):
    shown = json.loads(dvc(tiny_workspace, "plots", "show", "--json").stdout)["data"]
    plots = load_params()["paths"]["plots"]
    loss, accuracy, backbones = training_and_backbone_plots(shown, plots)
    for spec, column in ((loss, "train_loss"), (accuracy, "val_accuracy")):
        values = spec["data"]["values"]
        assert {v["method"] for v in values} == set(HISTORIES)  # one line each, one axis
        assert len(values) == sum(len(h) for h in HISTORIES.values())
        assert {v["field"] for v in values} == {column}
    assert_intervals_around_accuracies(backbones["data"]["values"])
    assert {v["backbone"] for v in backbones["data"]["values"]} == {"lite0", "lite1"}
    assert "interval" in backbones["encoding"]["tooltip"][-1]["title"]


def test_dvc_writes_a_page_that_loads_vega_from_the_project(tiny_workspace):
    dvc(tiny_workspace, "plots", "show", "-o", "dvc_plots")  # the template from .dvc/config
    page = (tiny_workspace / "dvc_plots" / "index.html").read_text()
    assert "cdn.jsdelivr.net" not in page and not re.search(r"<script[^>]+src=\"https?:", page)
    parser = Scripts()
    parser.feed(page)
    assert parser.sources
    for src in parser.sources:
        assert (tiny_workspace / "dvc_plots" / src).is_file(), src
    assert page.count("vegaEmbed('#") == 6


def test_fine_tuning_curves_join_the_linear_probe_plot(tiny_workspace, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(tiny_workspace, ws, ignore=shutil.ignore_patterns("dvc_plots", "tmp"))
    params = yaml.safe_load((ws / "params.yaml").read_text())
    changed = copy.deepcopy(params)
    changed["curves"]["finetune"] = ["full", "scratch"]
    (ws / "params.yaml").write_text(yaml.safe_dump(changed))
    paths = load_paths(ws / "params.yaml")
    write_curve(ws / paths["curves_finetune"] / "data_efficiency.csv", ["full", "scratch"])
    data = json.loads(dvc(ws, "plots", "show", "--json").stdout)["data"]
    (linear,) = [p for pid, [p] in data.items() if "linear" in pid]
    fields = {v["field"] for v in linear["content"]["data"]["values"]}
    assert fields == {
        "pretrained_linear", "random_init_linear", "raw_pixels_linear", "full", "scratch",
    }  # fmt: skip
    assert len([pid for pid in data if "data_efficiency" in pid]) == 2


@pytest.mark.slow
def test_the_pipelines_training_and_backbone_plots(reproduced):
    """What a real `dvc repro` writes, drawn by DVC: one training-loss and one val-accuracy
    chart holding every fine-tuned method, and the backbones with their intervals."""
    shown = json.loads(reproduced.dvc("plots", "show", "--json").stdout)
    assert not shown.get("errors"), shown.get("errors")
    params = reproduced.params()
    loss, accuracy, backbones = training_and_backbone_plots(
        shown["data"], reproduced.paths()["plots"]
    )
    finetuned = {*params["finetune"]["strategies"], *params["finetune"]["from_probe"]}
    assert len(finetuned) >= 2
    for spec in (loss, accuracy):
        assert {v["method"] for v in spec["data"]["values"]} == finetuned
    values = backbones["data"]["values"]
    assert {v["backbone"] for v in values} == set(params["backbones"])
    assert_intervals_around_accuracies(values)
