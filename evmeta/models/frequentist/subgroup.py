"""Subgroup (stratified) meta-analysis with tests for subgroup differences.

Two tests of whether the pooled effect differs between subgroups are reported, because
they answer slightly different questions (Borenstein et al. 2009, ch. 19):

* **separate tau^2**: a random-effects fit per subgroup, then a common-effect test of
  heterogeneity across the subgroup estimates (Q between, df = groups - 1);
* **common tau^2**: a mixed-effects meta-regression on the subgroup factor; its omnibus
  moderator test.

Partitioning of heterogeneity as CAMARADES reports it (Vesterinen et al. 2014): the
common-effect Q of all comparisons splits into Q within (the sum of the subgroups'
common-effect Q) and Q between = Q total - Q within.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from evmeta.errors import ModelError
from evmeta.models.base.design import as_frame
from evmeta.models.base.protocol import Summary, resolve_level
from evmeta.models.base.result_parts import PrintsSummary
from evmeta.models.frequentist.meta import MetaResult, meta_analysis


@dataclass(frozen=True, eq=False, repr=False)
class SubgroupResult(PrintsSummary):
    """Per-subgroup fits and the tests for subgroup differences (immutable; a
    :class:`~evmeta.models.base.protocol.FitResult`).

    ``inputs``, ``level``, ``measure`` and ``k`` are those of ``overall``, the model
    without subgroups; ``coef_table`` has one row per subgroup (its pooled effect).

    Attributes
    ----------
    by : str
        The grouping column.
    fits : dict
        Subgroup level -> MetaResult (levels with fewer than 2 comparisons are skipped
        and listed in ``skipped``).
    table : DataFrame
        One row per subgroup: k, estimate, se, ci_low, ci_high, pi_low, pi_high, tau2, i2,
        q, q_pvalue.
    q_between, q_between_df, q_between_pvalue : float
        Test for subgroup differences with separate tau^2 per subgroup.
    q_between_common, q_between_common_df, q_between_common_pvalue : float
        The same with a common tau^2 (mixed-effects model).
    tau2_common : float
    q_total, q_within, q_between_fixed, q_between_fixed_pvalue : float
        Partitioning of the common-effect heterogeneity.
    overall : MetaResult
        The model without subgroups.
    """

    by: str
    fits: dict[Any, MetaResult]
    table: pd.DataFrame
    q_between: float
    q_between_df: int
    q_between_pvalue: float
    q_between_common: float
    q_between_common_df: Any
    q_between_common_pvalue: float
    tau2_common: float
    q_total: float
    q_within: float
    q_between_fixed: float
    q_between_fixed_pvalue: float
    overall: MetaResult
    mixed: MetaResult
    skipped: tuple = ()

    @property
    def inputs(self) -> Any:
        return self.overall.inputs

    @property
    def level(self) -> float:
        return self.overall.level

    @property
    def measure(self) -> str | None:
        return self.overall.measure

    @property
    def k(self) -> int:
        return self.overall.k

    def coef_table(self, level: float | None = None) -> pd.DataFrame:
        """One row per pooled subgroup (index: the subgroup level): estimate, se, ci_low,
        ci_high, stat, pvalue (and df when t-based), k."""
        rows = {name: fit.coef_table(level).iloc[0] for name, fit in self.fits.items()}
        table = pd.DataFrame(rows).T
        table["k"] = [fit.k for fit in self.fits.values()]
        table.index.name = self.by
        return table

    def heterogeneity_table(self, level: float | None = None) -> pd.DataFrame:
        """One row per subgroup: its between-comparison tau^2, tau (Q-profile interval) and I^2."""
        parts = [fit.heterogeneity_table(level).assign(component=name) for name, fit in self.fits.items()]
        return pd.concat(parts).set_index("component")

    def predict(self, newmods: Any = None, level: float | None = None) -> pd.DataFrame:
        """The pooled effect of each subgroup with its prediction interval (one row each)."""
        if newmods is not None:
            raise ModelError(
                "a subgroup analysis predicts its subgroups' pooled effects; it takes no newmods"
            )
        rows = {name: fit.predict(level=level).iloc[0] for name, fit in self.fits.items()}
        out = pd.DataFrame(rows).T
        out.index.name = self.by
        return out

    def summary(self, level: float | None = None) -> Summary:
        """A printable summary, as every result's: ``print(summary)`` shows the tests for
        subgroup differences and the subgroup table; ``.table`` has one row per subgroup.

        Parameters
        ----------
        level : float, optional
            Level of the confidence and prediction intervals (default: the fits' level).

        Returns
        -------
        Summary
            ``.table`` columns: estimate, se, ci_low, ci_high, pi_low, pi_high, k, tau2, i2,
            q, q_pvalue; indexed by subgroup level.
        """
        level = resolve_level(level, self.overall.level)
        table = self.table if level == self.overall.level else self._table_at(level)
        first = ["estimate", "se", "ci_low", "ci_high"]
        table = table[[*first, *(c for c in table.columns if c not in first)]]
        title = f"Subgroup analysis by {self.by} ({self.overall.method}, test {self.overall.test})"
        lines = [
            f"Test for subgroup differences (separate tau^2): Q({self.q_between_df}) = {self.q_between:.3f}, "
            f"p = {self.q_between_pvalue:.4g}",
            f"Test for subgroup differences (common tau^2 = {self.tau2_common:.4f}): "
            f"{self.q_between_common:.3f} on {self.q_between_common_df} df, p = {self.q_between_common_pvalue:.4g}",
            f"Partition of Q (common effect): total {self.q_total:.3f} = within {self.q_within:.3f} "
            f"+ between {self.q_between_fixed:.3f} (p = {self.q_between_fixed_pvalue:.4g})",
        ]
        if self.skipped:
            lines.append(
                f"Subgroups with fewer than 2 comparisons, not pooled: {', '.join(map(str, self.skipped))}"
            )
        return Summary(title, lines, table, level)

    def _table_at(self, level: float) -> pd.DataFrame:
        """``table`` with its confidence and prediction intervals at another level."""
        table = self.table.copy()
        for name, fit in self.fits.items():
            pooled = fit.predict(level=level).iloc[0]
            for column in ["ci_low", "ci_high", "pi_low", "pi_high"]:
                table.loc[name, column] = pooled[column]
        return table

    def to_frame(self) -> pd.DataFrame:
        out = self.table.reset_index(names="subgroup")
        out.insert(0, "by", self.by)
        return out

    def to_dict(self) -> dict[str, Any]:
        keys = [
            "by",
            "q_between",
            "q_between_df",
            "q_between_pvalue",
            "q_between_common",
            "q_between_common_pvalue",
            "tau2_common",
            "q_total",
            "q_within",
            "q_between_fixed",
            "q_between_fixed_pvalue",
        ]
        out = {key: getattr(self, key) for key in keys}
        out["q_between_common_df"] = (
            list(self.q_between_common_df)
            if isinstance(self.q_between_common_df, tuple)
            else self.q_between_common_df
        )
        out["subgroups"] = self.to_frame().to_dict(orient="records")
        out["skipped"] = [str(s) for s in self.skipped]
        return out


def subgroup_analysis(
    data: Any, by: str, yi: Any = "yi", vi: Any = "vi", **meta_kwargs: Any
) -> SubgroupResult:
    """Fit the model in each level of ``by`` and test for subgroup differences.

    Parameters
    ----------
    data : DataFrame or Comparisons
    by : str
        Column whose levels define the subgroups (e.g. ``isolation_method``).
    yi, vi : str
        Effect size and variance columns.
    **meta_kwargs
        ``method``, ``test``, ``level`` for :func:`meta_analysis` (no ``mods``).
    """
    frame = as_frame(data)
    if frame is None or by not in frame.columns:
        columns = ", ".join(map(str, frame.columns)) if frame is not None else ""
        raise ModelError(f"by={by!r} is not a column of data; columns: {columns}")
    if "mods" in meta_kwargs:
        raise ModelError("subgroup_analysis takes no mods; use meta_analysis(mods=...) for meta-regression")
    if frame[by].isna().any():
        missing = frame.index[frame[by].isna()]
        raise ModelError(f"{by!r} is missing in {len(missing)} row(s); filter or label them first")
    overall = meta_analysis(frame, yi, vi, **meta_kwargs)
    levels = (
        list(pd.Categorical(frame[by]).categories)
        if not isinstance(frame[by].dtype, pd.CategoricalDtype)
        else list(frame[by].cat.categories)
    )
    fits: dict[Any, MetaResult] = {}
    skipped = []
    for level in levels:
        subset = frame[frame[by] == level]
        if len(subset) < 2:
            skipped.append(level)
            continue
        fits[level] = meta_analysis(subset, yi, vi, **meta_kwargs)
    if len(fits) < 2:
        raise ModelError(
            f"subgroup analysis by {by!r} needs at least 2 subgroups with 2 or more comparisons each"
        )
    table = _subgroup_table(fits)
    table.index.name = by
    estimates = table["estimate"].to_numpy(dtype=float)
    weights = 1 / table["se"].to_numpy(dtype=float) ** 2
    pooled = np.sum(weights * estimates) / np.sum(weights)
    q_between = float(np.sum(weights * (estimates - pooled) ** 2))
    df_between = len(fits) - 1
    pooled_rows = frame[frame[by].isin(list(fits))].copy()
    pooled_rows[by] = pd.Categorical(pooled_rows[by], categories=list(fits))
    mixed = meta_analysis(pooled_rows, yi, vi, mods=f"~ {by}", **meta_kwargs)
    q_total, q_within = _q_partition(pooled_rows, by, list(fits), yi, vi, meta_kwargs)
    q_between_fixed = q_total - q_within
    return SubgroupResult(
        by=by,
        fits=fits,
        table=table,
        q_between=q_between,
        q_between_df=df_between,
        q_between_pvalue=float(stats.chi2.sf(q_between, df_between)),
        q_between_common=mixed.qm,
        q_between_common_df=mixed.qm_df,
        q_between_common_pvalue=mixed.qm_pvalue,
        tau2_common=mixed.tau2,
        q_total=q_total,
        q_within=q_within,
        q_between_fixed=q_between_fixed,
        q_between_fixed_pvalue=float(stats.chi2.sf(q_between_fixed, df_between)),
        overall=overall,
        mixed=mixed,
        skipped=tuple(skipped),
    )


def _q_partition(
    rows: pd.DataFrame, by: str, levels: list, yi: Any, vi: Any, kwargs: dict
) -> tuple[float, float]:
    """Common-effect Q of all pooled rows and the sum of the subgroups' (Q total, Q within)."""
    fixed = {**kwargs, "method": "EE", "inference": "model", "cluster": None}
    total = meta_analysis(rows, yi, vi, **fixed).q
    within = float(sum(meta_analysis(rows[rows[by] == level], yi, vi, **fixed).q for level in levels))
    return total, within


def _subgroup_table(fits: dict[Any, MetaResult]) -> pd.DataFrame:
    """One row per pooled subgroup: k, estimate, se, intervals, tau2, i2, q, q_pvalue."""
    names = ["k", "estimate", "se", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "i2", "q", "q_pvalue"]
    return pd.DataFrame({level: {name: getattr(f, name) for name in names} for level, f in fits.items()}).T


def adjust_pvalues(pvalues: Any, method: str = "bonferroni") -> np.ndarray:
    """Correct the p-values of several stratified analyses (statsmodels ``multipletests``).

    ``method``: ``bonferroni`` (CAMARADES practice: one test per stratification) or
    ``holm``, or any method statsmodels accepts.
    """
    from statsmodels.stats.multitest import multipletests

    return multipletests(np.asarray(pvalues, dtype=float), method=method)[1]
