"""WebPlotDigitizer exports of synthetic charts become outcome rows within pixel resolution.

Charts are drawn with matplotlib at known means and error bars; the pixel of every bar top,
point and error-bar end is computed from the figure transform (and checked against the
rendered image), rounded to whole pixels as a click would be, and written in WPD's project
(JSON, version 4.2) and CSV formats. The reader must recover the values within 1.5 pixels
(0.5 px for the click plus up to 0.5 px for each calibration point, interpolated).
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from typer.testing import CliRunner

from evmeta.cli import app
from evmeta.review.digitized import DigitizedError, read_digitized
from evmeta.schema.columns import column_map

PIXEL_TOLERANCE = 1.5
BAR_MEANS, BAR_SDS = [12.3, 7.8, 15.1], [2.1, 1.4, 3.0]
ARMS = ["Vehicle", "EV low", "EV high"]


def _pixel(figure: Figure, ax, x: float, y: float) -> tuple[float, float]:
    """WPD pixel (origin top left) of data point (x, y), rounded as a click."""
    display_x, display_y = ax.transData.transform((x, y))
    return float(round(display_x)), float(round(figure.bbox.height - display_y))


def _bar_chart():
    figure = Figure(figsize=(4, 3), dpi=100)
    ax = figure.add_subplot()
    ax.bar(range(3), BAR_MEANS, color="#4477AA", yerr=[[0, 0, 0], BAR_SDS], capsize=4, ecolor="black")
    ax.set_ylim(0, 20)
    ax.set_xlim(-0.6, 2.6)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return figure, ax, np.asarray(canvas.buffer_rgba())


def _bar_project(figure, ax, labels: list[str] | None = None, old_style: bool = False) -> dict:
    calibration = []
    for value in (0, 20):
        px, py = _pixel(figure, ax, -0.6, value)
        calibration.append({"px": px, "py": py, "dx": "0", "dy": str(value), "dz": None})
    data = []
    for index, (mean, sd) in enumerate(zip(BAR_MEANS, BAR_SDS, strict=True)):
        for value in (mean, mean + sd):  # the mean first, then its error-bar end
            px, py = _pixel(figure, ax, index, value)
            label = labels[index] if labels else f"Bar{len(data)}"
            point = {"x": px, "y": py, "value": [label, 0.0]}
            point["metadata"] = [label] if old_style else {"label": label}
            data.append(point)
    return {
        "version": [4, 2],
        "axesColl": [{"name": "Bar", "type": "BarAxes", "isLog": False, "isRotated": False, "calibrationPoints": calibration}],
        "datasetColl": [{"name": "Figure 2B", "axesName": "Bar", "colorRGB": [200, 0, 0, 255],
                         "metadataKeys": ["Label"] if old_style else ["label"], "data": data, "autoDetectionData": None}],
        "measurementColl": [],
    }  # fmt: skip


def _resolution(figure, ax) -> float:
    """Data units per pixel on the value axis."""
    return 20 / (ax.transData.transform((0, 20))[1] - ax.transData.transform((0, 0))[1])


def test_pixels_from_the_transform_are_on_the_drawn_chart():
    figure, ax, image = _bar_chart()
    for index, (mean, sd) in enumerate(zip(BAR_MEANS, BAR_SDS, strict=True)):
        px, py = _pixel(figure, ax, index + 0.2, mean - 1)  # inside the bar, beside the error bar
        assert tuple(image[int(py), int(px), :3]) == (0x44, 0x77, 0xAA)
        px, py = _pixel(figure, ax, index, mean + sd)  # the cap of the error bar
        assert image[int(py) - 1 : int(py) + 2, int(px), :3].max(axis=1).min() < 80  # dark line


@pytest.mark.parametrize("old_style", [False, True])
def test_bar_project_recovers_means_and_sds(tmp_path, old_style):
    figure, ax, _ = _bar_chart()
    path = tmp_path / "wpd.json"
    path.write_text(json.dumps(_bar_project(figure, ax, ARMS, old_style)))
    rows = read_digitized(path, kind="bar", error="sd")
    step = _resolution(figure, ax)
    assert list(rows["arm_label"]) == ARMS
    assert np.abs(rows["mean"] - BAR_MEANS).max() <= PIXEL_TOLERANCE * step
    assert np.abs(rows["sd"] - BAR_SDS).max() <= PIXEL_TOLERANCE * step
    assert (rows["data_source"] == "figure").all() and "sem" not in rows
    assert rows["value_per_pixel"].to_numpy() == pytest.approx(step, rel=0.02)
    assert {"mean", "sd", "data_source", "notes"} <= set(column_map("outcomes"))  # paste-ready names


def test_default_labels_become_dataset_and_number(tmp_path):
    figure, ax, _ = _bar_chart()
    path = tmp_path / "wpd.json"
    path.write_text(json.dumps(_bar_project(figure, ax)))
    rows = read_digitized(path, kind="bar", error="sem")
    assert list(rows["arm_label"]) == ["Figure 2B 1", "Figure 2B 2", "Figure 2B 3"]
    assert "sem" in rows and "sd" not in rows and "read as SEM" in rows["notes"][0]


def test_log_axis_point_chart_recovers_values_per_group_and_time(tmp_path):
    days = [1.0, 3.0, 7.0]
    groups = {
        "EV": ([150.0, 80.0, 40.0], [30.0, 12.0, 9.0]),
        "Vehicle": ([300.0, 260.0, 210.0], [45.0, 50.0, 40.0]),
    }
    figure = Figure(figsize=(4, 3), dpi=120)
    ax = figure.add_subplot()
    ax.set_yscale("log")
    for offset, (means, sems) in zip((-0.1, 0.1), groups.values(), strict=True):
        ax.errorbar(np.add(days, offset), means, yerr=sems, fmt="o", capsize=3)
    ax.set_ylim(10, 1000)
    ax.set_xlim(0, 8)
    FigureCanvasAgg(figure).draw()
    calibration = []
    for x, y, dx, dy in [(0, 20, "0", ""), (8, 20, "8", ""), (0.5, 10, "", "10"), (0.5, 1000, "", "1000")]:
        px, py = _pixel(figure, ax, x, y)
        calibration.append({"px": px, "py": py, "dx": dx, "dy": dy, "dz": None})
    datasets = []
    for offset, (name, (means, sems)) in zip((-0.1, 0.1), groups.items(), strict=True):
        data = []
        for day, mean, sem in zip(days, means, sems, strict=True):
            for value in (mean, mean + sem):
                px, py = _pixel(figure, ax, day + offset, value)
                data.append({"x": px, "y": py})
        datasets.append({"name": name, "axesName": "XY", "metadataKeys": [], "data": data})
    project = {"version": [4, 2], "axesColl": [{"name": "XY", "type": "XYAxes", "isLogX": False, "isLogY": True,
               "noRotation": False, "calibrationPoints": calibration}], "datasetColl": datasets}  # fmt: skip
    path = tmp_path / "points.json"
    path.write_text(json.dumps(project))
    rows = read_digitized(path, kind="point", error="sem")
    assert list(rows["arm_label"]) == ["EV"] * 3 + ["Vehicle"] * 3
    truth_mean = np.concatenate([groups["EV"][0], groups["Vehicle"][0]])
    truth_sem = np.concatenate([groups["EV"][1], groups["Vehicle"][1]])
    step = rows["value_per_pixel"].to_numpy()  # local resolution of the log axis at each mean
    assert (np.abs(rows["mean"] - truth_mean) <= PIXEL_TOLERANCE * step).all()
    # sem = end - mean: both ends err by up to 1.5 px; the end's pixel is worth up to 1.2x more
    # on this log axis ((mean + sem) / mean <= 1.2 here).
    assert (np.abs(rows["sem"] - truth_sem) <= PIXEL_TOLERANCE * step * (1 + 1.2)).all()
    x_step = 8 / (ax.transData.transform((8, 10))[0] - ax.transData.transform((0, 10))[0])
    truth_x = [d - 0.1 for d in days] + [d + 0.1 for d in days]  # the groups are dodged by 0.1 day
    assert np.abs(rows["timepoint"] - truth_x).max() <= PIXEL_TOLERANCE * x_step


def test_csv_exports_single_and_all_datasets(tmp_path):
    single = tmp_path / "bars.csv"
    single.write_text("Vehicle,12.31\nVehicle,14.38\nEV,7.79\nEV,9.22\n")
    rows = read_digitized(single, kind="bar", error="sd")
    assert list(rows["arm_label"]) == ["Vehicle", "EV"]
    assert rows["mean"].tolist() == [12.31, 7.79] and rows["sd"].round(10).tolist() == [2.07, 1.43]
    wide = tmp_path / "all.csv"
    wide.write_text("EV,,Vehicle,\nX,Y,X,Y\n1,150,1,300\n1,180,1,345\n3,80,,\n3,92,,\n")
    rows = read_digitized(wide, kind="point", error="sem")
    assert rows[["arm_label", "timepoint", "mean", "sem"]].values.tolist() == [
        ["EV", 1.0, 150.0, 30.0],
        ["EV", 3.0, 80.0, 12.0],
        ["Vehicle", 1.0, 300.0, 45.0],
    ]


def test_project_inside_a_tar_archive(tmp_path):
    figure, ax, _ = _bar_chart()
    payload = json.dumps(_bar_project(figure, ax, ARMS)).encode()
    with tarfile.open(tmp_path / "project.tar", "w") as archive:
        info = tarfile.TarInfo("figure2/wpd.json")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    rows = read_digitized(tmp_path / "project.tar", kind="bar", error="sd")
    assert list(rows["arm_label"]) == ARMS


def test_mistakes_are_explained(tmp_path):
    figure, ax, _ = _bar_chart()
    project = _bar_project(figure, ax, ARMS)
    odd = json.loads(json.dumps(project))
    odd["datasetColl"][0]["data"].pop()
    (tmp_path / "odd.json").write_text(json.dumps(odd))
    with pytest.raises(DigitizedError, match="5 points, an odd number"):
        read_digitized(tmp_path / "odd.json", kind="bar", error="sd")
    shuffled = json.loads(json.dumps(project))
    data = shuffled["datasetColl"][0]["data"]
    data[1], data[2] = data[2], data[1]  # the second click belongs to the next bar
    (tmp_path / "shuffled.json").write_text(json.dumps(shuffled))
    with pytest.raises(DigitizedError, match=r"points 1 and 2 are \d+ px apart"):
        read_digitized(tmp_path / "shuffled.json", kind="bar", error="sd")
    with pytest.raises(DigitizedError, match="as the figure legend says"):
        read_digitized(tmp_path / "odd.json", kind="bar", error="se")
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(DigitizedError, match="not a WebPlotDigitizer 4 project"):
        read_digitized(tmp_path / "x.json", kind="bar", error="sd")
    polar = json.loads(json.dumps(project))
    polar["axesColl"][0]["type"] = "PolarAxes"
    (tmp_path / "polar.json").write_text(json.dumps(polar))
    with pytest.raises(DigitizedError, match="'PolarAxes' is not supported"):
        read_digitized(tmp_path / "polar.json", kind="bar", error="sd")


def test_cli_requires_the_error_kind_and_writes_rows(tmp_path):
    figure, ax, _ = _bar_chart()
    path = tmp_path / "wpd.json"
    path.write_text(json.dumps(_bar_project(figure, ax, ARMS)))
    runner = CliRunner()
    missing = runner.invoke(app, ["digitized", str(path), "--kind", "bar", "-o", str(tmp_path / "r.csv")])
    assert missing.exit_code == 2 and "--error" in missing.output
    result = runner.invoke(
        app, ["digitized", str(path), "--kind", "bar", "--error", "SD", "-o", str(tmp_path / "r.csv")]
    )
    assert result.exit_code == 0, result.output
    text = Path(tmp_path / "r.csv").read_text()
    assert text.splitlines()[0] == "arm_label,mean,sd,data_source,value_per_pixel,notes"
    bad = runner.invoke(app, ["digitized", str(tmp_path / "none.json"), "--kind", "bar", "--error", "sd"])
    assert bad.exit_code == 2 and "does not exist" in bad.output


def test_wpd_point_groups_pair_by_tuple_not_by_click_order(tmp_path):
    figure, ax, _ = _bar_chart()
    project = _bar_project(figure, ax, ARMS)
    dataset = project["datasetColl"][0]
    dataset["groupNames"] = ["Error bar", "Mean"]  # WPD 4.6+ point groups; the means are group 1
    points = dataset["data"]
    for number, point in enumerate(points):
        point["tuple"], point["group"] = number // 2, 1 - number % 2
    dataset["data"] = points[1::2] + points[0::2]  # every error-bar end clicked before any mean
    path = tmp_path / "groups.json"
    path.write_text(json.dumps(project))
    rows = read_digitized(path, kind="bar", error="sd")
    step = _resolution(figure, ax)
    assert list(rows["arm_label"]) == ARMS
    assert np.abs(rows["mean"] - BAR_MEANS).max() <= PIXEL_TOLERANCE * step
    assert np.abs(rows["sd"] - BAR_SDS).max() <= PIXEL_TOLERANCE * step
    dataset["data"] = dataset["data"][1:]
    path.write_text(json.dumps(project))
    with pytest.raises(DigitizedError, match=r"point group 0 has 1 mean\(s\) and 0 error-bar end\(s\)"):
        read_digitized(path, kind="bar", error="sd")


def test_horizontal_bars_on_a_log_axis(tmp_path):
    means, sds = [3.0, 45.0, 120.0], [1.0, 20.0, 60.0]
    figure = Figure(figsize=(4, 3), dpi=100)
    ax = figure.add_subplot()
    ax.barh(range(3), means, xerr=[[0, 0, 0], sds], color="#AA3377", capsize=3, log=True)
    ax.set_xlim(1, 1000)
    ax.set_ylim(-0.6, 2.6)
    FigureCanvasAgg(figure).draw()
    calibration = []
    for value in (1, 1000):
        px, py = _pixel(figure, ax, value, -0.6)
        calibration.append({"px": px, "py": py, "dx": "0", "dy": str(value)})
    data = []
    for index, (mean, sd) in enumerate(zip(means, sds, strict=True)):
        for value in (mean, mean + sd):
            px, py = _pixel(figure, ax, value, index)
            data.append({"x": px, "y": py, "metadata": {"label": ARMS[index]}})
    project = {"version": [4, 2], "axesColl": [{"name": "Bar", "type": "BarAxes", "isLog": True, "isRotated": False,
               "calibrationPoints": calibration}], "datasetColl": [{"name": "d", "axesName": "Bar", "data": data}]}  # fmt: skip
    path = tmp_path / "barh.json"
    path.write_text(json.dumps(project))
    rows = read_digitized(path, kind="bar", error="sd")
    step = rows["value_per_pixel"].to_numpy()  # local resolution: a pixel is worth more at larger values
    assert list(rows["arm_label"]) == ARMS
    assert (np.abs(rows["mean"] - means) <= PIXEL_TOLERANCE * step).all()
    # sd = end - mean; the end's pixel is worth (mean + sd) / mean times the mean's.
    ratio = (np.add(means, sds) / means).max()
    assert (np.abs(rows["sd"] - sds) <= PIXEL_TOLERANCE * step * (1 + ratio)).all()


def test_values_are_written_to_six_significant_digits(tmp_path):
    # Issue 18: `evmeta digitized` wrote 1.9299999999999997 (float noise of 14.24 - 12.31).
    export = tmp_path / "bars.csv"
    export.write_text("Vehicle,12.31\nVehicle,14.24\nEV,0.1\nEV,0.4\nBig,123456789\nBig,123456790.5\n")
    rows = read_digitized(export, kind="bar", error="sd")
    assert rows["sd"].tolist() == [1.93, 0.3, 1.5] and rows["mean"].tolist() == [12.31, 0.1, 123457000.0]
    out = tmp_path / "rows.csv"
    result = CliRunner().invoke(
        app, ["digitized", str(export), "--kind", "bar", "--error", "sd", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "Vehicle,12.31,1.93,figure" in text and "99999" not in text and "00000000" not in text
