"""Outcome rows from WebPlotDigitizer exports of bar and point charts with error bars.

Most numbers of a preclinical review are read off published figures. Reviewers digitize
them with WebPlotDigitizer (WPD; Rohatgi, https://automeris.io): for every arm, the mean
(top of the bar, or the point) and then the end of its error bar. This module reads

* the WPD project file (``.json``, or the ``.tar`` project that contains ``wpd.json``),
  format version 4: ``axesColl`` holds each axes' type (``XYAxes`` or ``BarAxes``), log
  flags and calibration points (pixel ``px``, ``py`` and data ``dx``, ``dy``);
  ``datasetColl`` holds each dataset's name, axes name and clicked pixels (``x``, ``y``,
  with a ``label`` in the point metadata for bar charts). Pixels are converted to data
  with the calibration in the file (linear or log10 axes), never with WPD's cached values;
* WPD's CSV export: two columns per dataset (``x,y``, or ``label,value`` for bar charts),
  optionally under a row of dataset names and a row of column names.

Points are paired within each dataset by WPD's point groups when the project defines them
(``groupNames``, with ``tuple`` and ``group`` on each point; the group named mean/average, else
the first, holds the means), otherwise in the order they were clicked (mean, then error-bar end); the error is the distance between the two, reported as SD or SEM as the user says
(``error="sd"`` or ``"sem"``), never guessed. Rows carry ``data_source = "figure"``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from evmeta._paths import read_bytes_capped
from evmeta.errors import DigitizedError, PathError

#: Largest export read, in bytes (a WPD project without its image is a few kB).
MAX_BYTES = 20 * 1024 * 1024
#: Largest distance (pixels) across the category axis between a mean and its error-bar end.
MAX_PAIR_OFFSET_PX = 8.0
#: Significant digits of the values written: a figure is read to about 1 part in 1,000 (a
#: pixel of a plot a few hundred pixels tall), so 6 digits keep every digit the click holds
#: and drop float noise such as 1.9299999999999997.
SIGNIFICANT_DIGITS = 6
#: How far outside its calibration points a clicked point may lie, in calibrated spans (the
#: distance between the two calibration points of that axis): a point ten spans away (or a
#: calibration typed wrong) is a mistake, not a value, and on a log axis it would overflow.
MAX_OUTSIDE_SPANS = 10.0


@dataclass(frozen=True)
class DigitizedPoint:
    """One clicked point: dataset, label, category position, value, value per pixel."""

    dataset: str
    index: int
    label: str
    x: float
    value: float
    resolution: float
    across_px: float | None = None
    #: WPD point groups (tuples): which tuple the point belongs to and whether it is the mean.
    tuple_index: int | None = None
    is_mean: bool | None = None


# --- calibration -------------------------------------------------------------------------


def _number(text: object, where: str) -> float:
    """A finite number (NaN, infinity, "Infinity", lists and missing values are refused)."""
    if isinstance(text, bool) or not isinstance(text, (int, float, str)):
        raise DigitizedError(f"{where}: expected a number, got {str(text)[:40]!r}")
    try:
        value = float(str(text).strip())
    except (ValueError, OverflowError):
        raise DigitizedError(f"{where}: expected a number, got {str(text)[:40]!r}") from None
    if not np.isfinite(value):
        raise DigitizedError(f"{where}: expected a finite number, got {str(text)[:40]!r}")
    return value


def _field(point: object, key: str, where: str) -> float:
    """``point[key]`` as a finite number; a point that is not an object, or lacks the key, is
    named."""
    if not isinstance(point, dict):
        raise DigitizedError(f"{where}: expected an object with {key!r}, got {str(point)[:40]!r}")
    if key not in point:
        raise DigitizedError(f"{where}: {key!r} is missing")
    return _number(point[key], f"{where} {key}")


def _span_check(fraction: float, where: str) -> None:
    if not (np.isfinite(fraction) and -MAX_OUTSIDE_SPANS <= fraction <= 1 + MAX_OUTSIDE_SPANS):
        raise DigitizedError(
            f"{where}: lies {abs(fraction):.3g} calibrated spans from the axis' calibration points "
            f"(at most {MAX_OUTSIDE_SPANS:g} accepted); check the axis calibration"
        )


class XYCalibration:
    """Affine pixel -> data map of WPD ``XYAxes`` (X1, X2 on the x axis; Y1, Y2 on the y axis)."""

    def __init__(self, points: list[dict], log_x: bool, log_y: bool, where: str) -> None:
        if len(points) < 4:
            raise DigitizedError(f"{where}: XY axes need 4 calibration points, found {len(points)}")
        self.log_x, self.log_y = log_x, log_y
        names = ("X1", "X2", "Y1", "Y2")
        px = np.array(
            [
                [_field(p, "px", f"{where} {n}"), _field(p, "py", f"{where} {n}")]
                for p, n in zip(points[:4], names, strict=True)
            ]
        )
        xs = [self._scale(_field(points[i], "dx", f"{where} {names[i]}"), log_x, where) for i in (0, 1)]
        ys = [self._scale(_field(points[i], "dy", f"{where} {names[i]}"), log_y, where) for i in (2, 3)]
        if xs[0] == xs[1] or ys[0] == ys[1]:
            raise DigitizedError(f"{where}: two calibration points of one axis have the same value")
        self.xs, self.ys = xs, ys
        # Columns: pixel displacement X1->X2 maps to (dx, 0); Y1->Y2 maps to (0, dy).
        pixel = np.column_stack([px[1] - px[0], px[3] - px[2]])
        data = np.array([[xs[1] - xs[0], 0.0], [0.0, ys[1] - ys[0]]])
        if abs(np.linalg.det(pixel)) < 1e-9:
            raise DigitizedError(f"{where}: the calibration points are collinear; recalibrate the axes")
        self.matrix = data @ np.linalg.inv(pixel)
        # X1 has data x = xs[0]; Y1 has data y = ys[0].
        self.offset = np.array([xs[0] - self.matrix[0] @ px[0], ys[0] - self.matrix[1] @ px[2]])

    @staticmethod
    def _scale(value: float, log: bool, where: str) -> float:
        if not log:
            return value
        if value <= 0:
            raise DigitizedError(f"{where}: a log axis needs positive calibration values, got {value:g}")
        return float(np.log10(value))

    def to_data(self, x: float, y: float, where: str = "point") -> tuple[float, float]:
        u, v = self.matrix @ np.array([x, y]) + self.offset
        _span_check((u - self.xs[0]) / (self.xs[1] - self.xs[0]), f"{where} (x)")
        _span_check((v - self.ys[0]) / (self.ys[1] - self.ys[0]), f"{where} (y)")
        return (10**u if self.log_x else u), (10**v if self.log_y else v)


class BarCalibration:
    """WPD ``BarAxes``: two points P1, P2 on the value axis (values in ``dy``)."""

    def __init__(self, points: list[dict], log: bool, rotated: bool, where: str) -> None:
        if len(points) < 2:
            raise DigitizedError(f"{where}: bar axes need 2 calibration points, found {len(points)}")
        self.log = log
        names = ("P1", "P2")
        (x1, y1), (x2, y2) = [
            (_field(p, "px", f"{where} {n}"), _field(p, "py", f"{where} {n}"))
            for p, n in zip(points[:2], names, strict=True)
        ]
        values = [_field(p, "dy", f"{where} {n}") for p, n in zip(points[:2], names, strict=True)]
        if log:
            if min(values) <= 0:
                raise DigitizedError(f"{where}: a log axis needs positive calibration values")
            values = [float(np.log10(v)) for v in values]
        if not rotated:  # WPD snaps an unrotated axis to exactly vertical or horizontal
            if abs(y2 - y1) >= abs(x2 - x1):
                x2 = x1
            else:
                y2 = y1
        if (x1, y1) == (x2, y2):
            raise DigitizedError(f"{where}: the two calibration points coincide; recalibrate the axes")
        if values[0] == values[1]:
            raise DigitizedError(f"{where}: the two calibration points have the same value")
        self.start, self.direction = np.array([x1, y1]), np.array([x2 - x1, y2 - y1])
        self.values = values

    def to_value(self, x: float, y: float, where: str = "point") -> float:
        fraction = (np.array([x, y]) - self.start) @ self.direction / (self.direction @ self.direction)
        _span_check(fraction, where)
        value = self.values[0] + fraction * (self.values[1] - self.values[0])
        return float(10**value if self.log else value)

    def across(self, x: float, y: float) -> float:
        """Pixel position along the category axis (perpendicular to the value axis)."""
        normal = np.array([-self.direction[1], self.direction[0]]) / np.hypot(*self.direction)
        return float(np.array([x, y]) @ normal)


# --- reading -------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    """The file's bytes: a regular file (not a FIFO, device or folder) of at most MAX_BYTES."""
    try:
        return read_bytes_capped(path, what="WebPlotDigitizer export", max_bytes=MAX_BYTES)
    except PathError as exc:
        raise DigitizedError(str(exc)) from None


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DigitizedError(
            f"{name}: not UTF-8 text (byte {exc.start}); expected a WebPlotDigitizer export"
        ) from None


def _reject_constant(name: str) -> float:
    raise DigitizedError(f"not valid JSON ({name} is not a number)")


def _load_project(path: Path) -> dict:
    if path.suffix.lower() == ".tar":
        try:
            with tarfile.open(path) as archive:
                member = next((m for m in archive.getmembers() if m.name.endswith("wpd.json")), None)
                handle = None
                if member is not None and member.isfile() and member.size <= MAX_BYTES:
                    handle = archive.extractfile(member)
                if handle is None:
                    raise DigitizedError(f"{path.name}: no wpd.json inside this WebPlotDigitizer project")
                text = _decode(handle.read(MAX_BYTES), f"{path.name} wpd.json")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DigitizedError(f"{path.name}: not a WebPlotDigitizer project archive ({exc})") from None
    else:
        text = _decode(_read_bytes(path), path.name)
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except DigitizedError as exc:
        raise DigitizedError(f"{path.name}: {exc}") from None
    except ValueError as exc:
        raise DigitizedError(f"{path.name}: not valid JSON ({str(exc)[:120]})") from None
    except RecursionError:
        raise DigitizedError(f"{path.name}: not valid JSON (nested too deeply)") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("axesColl"), list)
        or not isinstance(data.get("datasetColl"), list)
    ):
        raise DigitizedError(
            f"{path.name}: not a WebPlotDigitizer 4 project (no axesColl/datasetColl); "
            "save the project from WPD (File > Save Project) or export the data as CSV"
        )
    return data


def _calibration(axes: dict, where: str):
    kind = axes.get("type")
    points = axes.get("calibrationPoints") or []
    if not isinstance(points, list):
        raise DigitizedError(f"{where}: calibrationPoints must be a list of points")
    if kind == "XYAxes":
        return XYCalibration(points, bool(axes.get("isLogX")), bool(axes.get("isLogY")), where)
    if kind == "BarAxes":
        return BarCalibration(points, bool(axes.get("isLog")), bool(axes.get("isRotated")), where)
    raise DigitizedError(f"{where}: axes type {kind!r} is not supported; use XY or bar axes")


def _label(point: dict, keys: list[str]) -> str:
    metadata = point.get("metadata")
    if isinstance(metadata, dict):
        return str(metadata.get("label") or metadata.get("Label") or "")
    if isinstance(metadata, list) and metadata:
        position = next((i for i, k in enumerate(keys) if str(k).casefold() == "label"), 0)
        return str(metadata[position]) if position < len(metadata) else ""
    return ""


def read_wpd_json(path: str | Path) -> list[DigitizedPoint]:
    """Every clicked point of a WPD project, converted with the project's own calibration."""
    path = Path(path)
    data = _load_project(path)
    if not all(isinstance(a, dict) for a in [*data["axesColl"], *data["datasetColl"]]):
        raise DigitizedError(f"{path.name}: every entry of axesColl and datasetColl must be an object")
    axes_by_name = {str(a.get("name")): a for a in data["axesColl"]}
    points = []
    for dataset in data["datasetColl"]:
        name = str(dataset.get("name") or "dataset")
        where = f"{path.name} dataset {name!r}"
        axes = axes_by_name.get(str(dataset.get("axesName")))
        if axes is None:
            raise DigitizedError(
                f"{where}: its axes {dataset.get('axesName')!r} are not calibrated in the file"
            )
        calibration = _calibration(axes, f"{path.name} axes {axes.get('name')!r}")
        keys = dataset.get("metadataKeys") or []
        keys = keys if isinstance(keys, list) else []
        mean_group = _mean_group(dataset.get("groupNames"))
        clicked = dataset.get("data") or []
        if not isinstance(clicked, list):
            raise DigitizedError(f"{where}: data must be a list of points")
        for index, point in enumerate(clicked, start=1):
            at = f"{where} point {index}"
            x, y = _field(point, "x", at), _field(point, "y", at)
            converted = _convert(calibration, name, index, _label(point, keys), x, y, at)
            if mean_group is not None and point.get("tuple") is not None and point.get("group") is not None:
                tuple_index, group = (int(_field(point, k, at)) for k in ("tuple", "group"))
                converted = replace(converted, tuple_index=tuple_index, is_mean=group == mean_group)
            points.append(converted)
    return points


def _mean_group(names: object) -> int | None:
    """Index of the point group holding the means (named mean/average, else the first group)."""
    if not isinstance(names, list) or not names:
        return None
    return next((i for i, n in enumerate(names) if re.search(r"mean|average", str(n), re.I)), 0)


def _convert(
    calibration, dataset: str, index: int, label: str, x: float, y: float, where: str = "point"
) -> DigitizedPoint:
    with np.errstate(over="ignore", invalid="ignore"):
        if isinstance(calibration, BarCalibration):
            value = calibration.to_value(x, y, where)
            step = abs(calibration.to_value(x, y + 1, where) - value) or abs(
                calibration.to_value(x + 1, y, where) - value
            )
            point = DigitizedPoint(dataset, index, label, np.nan, value, step, calibration.across(x, y))
        else:
            data_x, value = calibration.to_data(x, y, where)
            step = abs(calibration.to_data(x, y + 1, where)[1] - value)
            point = DigitizedPoint(dataset, index, label, data_x, value, step, x)
    if not (np.isfinite(point.value) and np.isfinite(point.resolution)):
        raise DigitizedError(f"{where}: its value is not a finite number; check the axis calibration")
    return point


def read_wpd_csv(path: str | Path, kind: str) -> list[DigitizedPoint]:
    """Points of a WPD CSV export (already in data units; no pixel positions)."""
    path = Path(path)
    text = _decode(_read_bytes(path), path.name)
    try:
        rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise DigitizedError(f"{path.name}: not a CSV export ({exc})") from None
    if not rows:
        raise DigitizedError(f"{path.name}: empty file")
    width = max(len(r) for r in rows)
    names = [path.stem] * width
    if rows and not _numeric(rows[0][1] if len(rows[0]) > 1 else ""):
        first = rows[0]
        if len(rows) > 1 and not _numeric(rows[1][1] if len(rows[1]) > 1 else ""):  # dataset names, then X,Y
            names = [
                (first[i - i % 2] if i - i % 2 < len(first) else "").strip() or path.stem
                for i in range(width)
            ]
            rows = rows[2:]
        else:
            rows = rows[1:]
    points = []
    for start in range(0, width, 2):
        dataset, index = names[start], 0
        for line, row in enumerate(rows, start=1):
            cells = [*row, "", ""][start : start + 2]
            if not any(c.strip() for c in cells):
                continue
            index += 1
            where = f"{path.name} line {line} column {start + 2}"
            value = _number(cells[1], where)
            if kind == "bar" and not _numeric(cells[0]):
                points.append(DigitizedPoint(dataset, index, cells[0].strip(), np.nan, value, np.nan))
            else:
                points.append(DigitizedPoint(dataset, index, "", _number(cells[0], where), value, np.nan))
    return points


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", text or ""))


# --- pairing --------------------------------------------------------------------------------


def _pair(
    points: list[DigitizedPoint], kind: str, source: str
) -> list[tuple[DigitizedPoint, DigitizedPoint]]:
    pairs = []
    datasets = list(dict.fromkeys(p.dataset for p in points))
    for dataset in datasets:
        mine = [p for p in points if p.dataset == dataset]
        for mean, end in _pairs_of(mine, f"{source} dataset {dataset!r}"):
            offset = None
            if mean.across_px is not None and end.across_px is not None:
                offset = abs(mean.across_px - end.across_px)
            if offset is not None and offset > MAX_PAIR_OFFSET_PX:
                raise DigitizedError(
                    f"{source} dataset {dataset!r}: points {mean.index} and {end.index} are {offset:.0f} px apart "
                    f"across the {'bars' if kind == 'bar' else 'x axis'}; a mean and its error-bar end lie on "
                    "one line (check the clicking order: mean, then error-bar end)"
                )
            pairs.append((mean, end))
    return pairs


def _pairs_of(points: list[DigitizedPoint], where: str) -> list[tuple[DigitizedPoint, DigitizedPoint]]:
    """(mean, error-bar end) pairs: by WPD point groups when present, else in click order."""
    if points and all(p.tuple_index is not None for p in points):
        out = []
        for tuple_index in dict.fromkeys(p.tuple_index for p in points):
            members = [p for p in points if p.tuple_index == tuple_index]
            means = [p for p in members if p.is_mean]
            ends = [p for p in members if not p.is_mean]
            if len(means) != 1 or len(ends) != 1:
                raise DigitizedError(
                    f"{where}: point group {tuple_index} has {len(means)} mean(s) and {len(ends)} error-bar "
                    "end(s); each needs exactly one of each"
                )
            out.append((means[0], ends[0]))
        return out
    if len(points) % 2:
        raise DigitizedError(
            f"{where}: {len(points)} points, an odd number; digitize each arm's mean "
            "and then the end of its error bar, so every mean has its error-bar end"
        )
    return list(zip(points[::2], points[1::2], strict=True))


def _arm_label(mean: DigitizedPoint, end: DigitizedPoint, number: int, kind: str) -> str:
    for label in (mean.label, end.label):
        if label and not re.fullmatch(r"(Bar|Point)\d+", label):
            return label
    return mean.dataset if kind == "point" else f"{mean.dataset} {number}"


def _significant(value: float) -> float:
    """``value`` rounded to :data:`SIGNIFICANT_DIGITS` significant digits (NaN stays NaN)."""
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def read_digitized(path: str | Path, *, kind: str, error: str) -> pd.DataFrame:
    """Outcome rows from a WebPlotDigitizer export (see the module docstring).

    Parameters
    ----------
    path : str or Path
        WPD project (``.json`` or ``.tar``) or WPD CSV export (``.csv``).
    kind : {"bar", "point"}
        Bar chart (one value axis) or point chart (x, y; x is reported as ``timepoint``).
    error : {"sd", "sem"}
        What the figure legend says the error bars are; the only accepted source of that fact.

    Returns
    -------
    pandas.DataFrame
        ``arm_label``, ``timepoint`` (point charts), ``mean``, ``sd`` or ``sem``,
        ``data_source`` ("figure"), ``value_per_pixel`` (resolution; NaN for CSV), ``notes``.
        Numbers are rounded to :data:`SIGNIFICANT_DIGITS` significant digits.
    """
    if kind not in {"bar", "point"}:
        raise DigitizedError(f"kind must be 'bar' or 'point', got {kind!r}")
    if error not in {"sd", "sem"}:
        raise DigitizedError(f"error must be 'sd' or 'sem' (as the figure legend says), got {error!r}")
    path = Path(path)
    _read_bytes(path)  # exists, a regular file, within MAX_BYTES (checked before any parsing)
    suffix = path.suffix.lower()
    if suffix in {".json", ".tar"}:
        points = read_wpd_json(path)
    elif suffix in {".csv", ".txt"}:
        points = read_wpd_csv(path, kind)
    else:
        raise DigitizedError(f"{path.name}: expected a WebPlotDigitizer project (.json, .tar) or CSV export")
    if not points:
        raise DigitizedError(f"{path.name}: no digitized points")
    rows = []
    for number, (mean, end) in enumerate(_pair(points, kind, path.name), start=1):
        if not np.isfinite(end.value - mean.value):
            raise DigitizedError(
                f"{path.name} dataset {mean.dataset!r}: points {mean.index}-{end.index} give no finite "
                "error; check the axis calibration"
            )
        row: dict[str, str | float] = {"arm_label": _arm_label(mean, end, number, kind)}
        if kind == "point":
            row["timepoint"] = _significant(mean.x)
        row |= {
            "mean": _significant(mean.value),
            error: _significant(abs(end.value - mean.value)),
            "data_source": "figure",
            "value_per_pixel": _significant(mean.resolution),
            "notes": f"WebPlotDigitizer {path.name}, dataset {mean.dataset!r}, points {mean.index}-{end.index}; "
            f"error bars read as {error.upper()}",
        }
        rows.append(row)
    return pd.DataFrame(rows)
