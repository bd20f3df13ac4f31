"""Sampling covariance of comparisons that share one control arm (multiple-treatment studies).

When k EV arms are each compared with the same control arm, the k effect sizes reuse the
control's mean (or events), so their sampling errors are correlated. Splitting the control
n (CAMARADES practice) removes the double counting approximately; keeping n and modelling
the covariance is exact to first order. :func:`shared_control_covariance` builds that
covariance matrix from the comparison table of :func:`evmeta.build_comparisons` (built with
``shared_control="keep"``); pass it as ``V`` to ``multilevel_meta_analysis`` or
``bayesian_meta_analysis``.

Covariance of comparisons i and j sharing control c (group sizes n, control SD s_c, mean
m_c; the diagonal is ``vi`` as computed by :func:`evmeta.effect_size`):

====== ==================================================================
MD     s_c^2 / n_c
SMD    1 / n_c + d_i d_j n_c / (2 (n_i + n_c) (n_j + n_c))
ROM    s_c^2 / (n_c m_c^2)
NMD    a^2 s_c^2 / n_c,  a = 100 / (m_c - m_sham)  (shared scale, as in vi)
OR     1 / c + 1 / d  (control events c, non-events d)
RR     1 / c - 1 / n_c
RD     p_c (1 - p_c) / n_c
====== ==================================================================

The SMD term is the large-sample (delta-method) covariance of Hedges' g when each g uses
the SD pooled over its own pair of arms: the shared control mean gives 1/n_c and the
shared control variance gives the second term (it reduces to the d^2 / (2 (n_1 + n_2))
of the variance when i = j and only the control part is shared). Binary tables with a
zero control cell use the control cells plus 1/2, as the effect sizes do.

Binary comparisons converted to the SMD scale (``effect_conversion`` set, see
:mod:`evmeta.harmonize.or_to_smd`) are g_i = f_i ln OR_i with f_i = J_i sqrt(3)/pi, so two
of them sharing a control have covariance f_i f_j (1/c + 1/d), the OR term scaled; f_i is
recovered as sqrt(vi / var(ln OR_i)).

References
----------
Gleser LJ, Olkin I (2009). Stochastically dependent effect sizes. In: Cooper H, Hedges LV,
Valentine JC (eds), The Handbook of Research Synthesis and Meta-Analysis, 2nd ed.,
pp. 357-376. Russell Sage Foundation.
Viechtbauer W. metafor ``vcalc`` (grp1/grp2/w1/w2: correlation induced by a shared group).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evmeta.errors import InputError
from evmeta.harmonize.effects import MEASURES, effect_size

_NEEDED = {
    "MD": ("sd_control", "n_control"),
    "SMD": ("n_treat", "n_control"),
    "ROM": ("sd_control", "mean_control", "n_control"),
    "NMD": ("vi", "sd_treat", "n_treat", "sd_control", "n_control"),
    "OR": ("events_control", "total_control"),
    "RR": ("events_control", "total_control"),
    "RD": ("events_control", "total_control"),
}


def _shared_term(measure: str, t: pd.DataFrame, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Covariance of rows i and j (arrays of positions) that share their control row."""

    def col(name: str) -> np.ndarray:
        return t[name].astype(float).to_numpy()

    if measure in {"OR", "RR", "RD"}:
        return _binary_term(measure, col("events_control")[i], col("total_control")[i])
    n_c = col("n_control")[i]
    if measure == "MD":
        return col("sd_control")[i] ** 2 / n_c
    if measure == "SMD":
        n_t, d = col("n_treat"), col("yi")
        term = 1 / n_c + d[i] * d[j] * n_c / (2 * (n_t[i] + n_c) * (n_t[j] + n_c))
        return _converted_term(t, i, j, term)
    if measure == "ROM":
        return col("sd_control")[i] ** 2 / (n_c * col("mean_control")[i] ** 2)
    if measure == "NMD":
        # vi = a^2 (s_t^2/n_t + s_c^2/n_c) gives a^2 without the sham mean.
        parts = col("sd_treat") ** 2 / col("n_treat") + col("sd_control") ** 2 / col("n_control")
        scale2 = col("vi") / parts
        return np.sqrt(scale2[i] * scale2[j]) * col("sd_control")[i] ** 2 / n_c
    raise InputError(f"no shared-control covariance for measure {measure!r}")


def _converted_term(t: pd.DataFrame, i: np.ndarray, j: np.ndarray, term: np.ndarray) -> np.ndarray:
    """The SMD covariance ``term``, with the scaled OR term for pairs of converted binary
    comparisons; a converted and an unconverted comparison of one control are refused."""
    if "effect_conversion" not in t.columns:
        return term
    converted = (t["effect_conversion"].fillna("").astype(str) != "").to_numpy()
    if not converted.any():
        return term
    if (converted[i] != converted[j]).any():
        raise InputError(
            "a control arm is shared by a comparison converted from a log odds ratio and one computed "
            "from means; their covariance is not defined: use shared_control = 'split'"
        )
    events_t, total_t = t["events_treat"].astype(float), t["total_treat"].astype(float)
    events_c, total_c = t["events_control"].astype(float), t["total_control"].astype(float)
    lnor = effect_size("OR", ai=events_t, n1i=total_t, ci=events_c, n2i=total_c)
    factor = np.sqrt(t["vi"].astype(float).to_numpy() / lnor["vi"].to_numpy())
    scaled = factor[i] * factor[j] * _binary_term("OR", events_c.to_numpy()[i], total_c.to_numpy()[i])
    return np.where(converted[i], scaled, term)


def _binary_term(measure: str, events: np.ndarray, total: np.ndarray) -> np.ndarray:
    zero = (events == 0) | (events == total)
    events, total = events + np.where(zero, 0.5, 0.0), total + np.where(zero, 1.0, 0.0)
    if measure == "OR":
        return 1 / events + 1 / (total - events)
    if measure == "RR":
        return 1 / events - 1 / total
    p = events / total
    return p * (1 - p) / total


def shared_control_covariance(
    table: pd.DataFrame, *, group: str = "control_group_id", measure: str | None = None
) -> np.ndarray:
    """Sampling covariance matrix V (k x k) of the comparisons in ``table``.

    Parameters
    ----------
    table : DataFrame
        Comparison rows as written by :func:`evmeta.build_comparisons` with
        ``shared_control="keep"`` (``n_control`` is the control arm's reported n):
        ``yi``, ``vi``, ``measure``, the ``group`` column and the arm statistics
        ``n_treat``, ``n_control``, ``sd_treat``, ``sd_control``, ``mean_control``,
        ``events_control``, ``total_control`` that the measure needs.
    group : str
        Column naming the control row each comparison uses; rows with the same value
        share a control arm.
    measure : str, optional
        Effect measure; default: the table's ``measure`` column (one value).

    Returns
    -------
    ndarray
        Symmetric k x k matrix in the row order of ``table``: ``vi`` on the diagonal,
        the covariance of the module table for pairs sharing a control, 0 elsewhere.

    Raises
    ------
    ValueError
        Unknown or mixed measures, missing columns, or a split control (``n_control``
        differing from ``n_control_reported``), whose covariance would be wrong.

    Examples
    --------
    >>> t = pd.DataFrame({"yi": [2.0, 1.0], "vi": [0.3, 0.3], "measure": "MD",
    ...                   "control_group_id": ["c1", "c1"], "sd_control": [1.0, 1.0],
    ...                   "n_control": [5.0, 5.0]})
    >>> float(shared_control_covariance(t)[0, 1])
    0.2
    """
    if measure is None:
        measures = list(pd.unique(table["measure"])) if "measure" in table.columns else []
        if len(measures) != 1:
            raise InputError(f"give measure=...; the table has measures {list(measures)}")
        measure = str(measures[0])
    measure = measure.upper()
    if measure not in MEASURES:
        raise InputError(f"unknown measure {measure!r}; valid measures: {', '.join(MEASURES)}")
    missing = [c for c in ("yi", "vi", group, *_NEEDED[measure]) if c not in table.columns]
    if missing:
        raise InputError(f"the comparison table lacks column(s) {', '.join(missing)} needed for {measure}")
    if "n_control_reported" in table.columns:
        split = ~np.isclose(table["n_control"].astype(float), table["n_control_reported"].astype(float))
        if split.any():
            raise InputError(
                "the control n was split among the arms sharing it; build the comparisons with "
                "shared_control='keep' to model the shared control by its covariance instead"
            )
    k = len(table)
    V = np.diag(table["vi"].astype(float).to_numpy())
    codes = pd.factorize(table[group].astype(str))[0]
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    for members in np.split(order, bounds):
        if len(members) < 2:
            continue
        i, j = (a.ravel() for a in np.meshgrid(members, members, indexing="ij"))
        off = i != j
        V[i[off], j[off]] = _shared_term(measure, table, i[off], j[off])
    if k and not np.all(np.isfinite(V)):
        raise InputError("the shared-control covariance is not finite; check the arm statistics")
    return V
