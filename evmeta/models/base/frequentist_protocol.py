"""The result protocol (:mod:`evmeta.models.base.protocol`) for frequentist fits.

``FittedModel`` is mixed into ``MetaResult`` and ``MultilevelResult``, which are frozen
dataclasses holding ``model`` (the inputs), ``coefficients``, ``vb``, ``df``, ``level``,
the inference setting (``inference`` ``"model"`` or ``"CR2"``, ``cluster``),
``robust_cov`` (the CR2 covariance where CR2 was applied, else None) and the variance
components. The intercept's scalars (``estimate``, ``se``, ``stat``, ``pvalue``,
``ci_low``, ``ci_high``) and the prediction interval (``pi_low``, ``pi_high``) are read
from the stored coefficients and covariance, never stored twice.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evmeta.models.base.design import new_design
from evmeta.models.base.inference import coefficient_table, prediction_frame
from evmeta.models.base.protocol import Summary, resolve_level
from evmeta.models.base.result_parts import FirstCoefficient, PrintsSummary, StoredInputs
from evmeta.models.base.threshold import add_threshold_columns, check_threshold


class FittedModel(StoredInputs, FirstCoefficient, PrintsSummary):
    """Inputs, summaries and predictions shared by the frequentist result classes.

    Stored inputs (plain attributes, as metafor keeps ``yi.f``/``vi.f``): ``yi``, ``vi``
    (arrays of the rows fitted), ``X`` (design matrix), ``names`` (coefficient names),
    ``data`` (the rows fitted, every input column), ``mods`` (the formula), and the fields
    ``method``, ``test``, ``level``.
    """

    if TYPE_CHECKING:  # fields of the frozen dataclasses this is mixed into (for the type checker)
        method: str
        test: str
        level: float
        df: float | None
        vb: np.ndarray
        qm_df: Any
        versions: dict[str, str]
        inference: str
        cluster: str | None
        robust_cov: Any  # evmeta.models.frequentist.robust.RobustCovariance | None (a layer above)

        @property
        def tau2(self) -> float: ...

    @property
    def is_robust(self) -> bool:
        """True when cluster-robust (CR2) inference was applied (``inference="CR2"`` can
        fall back to model-based inference with a note; then this is False)."""
        return self.robust_cov is not None

    @property
    def pi_low(self) -> float:
        """Lower prediction-interval bound of a model without moderators (NaN with moderators)."""
        return float(self.predict().iloc[0]["pi_low"]) if self.model.intercept_only else float("nan")

    @property
    def pi_high(self) -> float:
        return float(self.predict().iloc[0]["pi_high"]) if self.model.intercept_only else float("nan")

    def _inference_settings(self) -> dict[str, Any]:
        """The inference setting that refits, subsets and case deletions carry over."""
        return {"inference": self.inference, "cluster": self.cluster}

    @property
    def settings(self) -> dict[str, Any]:
        """``method``, ``test``, ``level``, ``inference`` and ``cluster``: the keywords that
        fit the same model again (e.g. ``subgroup_analysis(data, by, **fit.settings)``)."""
        return {"method": self.method, "test": self.test, "level": self.level, **self._inference_settings()}

    # --- protocol ---------------------------------------------------------------------
    def _df_for(self, X: np.ndarray) -> float | np.ndarray | None:
        if self.robust_cov is not None:
            df: np.ndarray = self.robust_cov.satterthwaite_df(X)
            return df
        return self.df

    def coef_table(self, level: float | None = None) -> pd.DataFrame:
        """estimate, se, ci_low, ci_high, stat, pvalue (and df when t-based) per coefficient."""
        level = resolve_level(level, self.level)
        if level == self.level:
            return self.coefficients.copy()
        beta = self.coefficients["estimate"].to_numpy()
        if self.robust_cov is not None:
            df = self.coefficients["df"].to_numpy()
            table = coefficient_table(beta, self.vb, self.names, level, 1.0)
            table = _t_table(table, df, level)
            table["df"] = df
            return table
        return coefficient_table(beta, self.vb, self.names, level, self.df)

    def predict(
        self, newmods: Any = None, level: float | None = None, *, threshold: float | None = None
    ) -> pd.DataFrame:
        """Predicted average effects: pred, se, ci_low, ci_high, pi_low, pi_high.

        Parameters
        ----------
        newmods : DataFrame or array-like, optional
            Moderator values: a DataFrame with the moderator columns, or rows of values in
            coefficient order without the intercept (as metafor). None: the fitted rows
            (for a model without moderators, the pooled effect once).
        level : float, optional
            Interval level (default: the model's).
        threshold : float, optional
            Adds ``p_true_above``, the probability that a new comparable study's true
            effect exceeds ``threshold``, and ``share_true_above``
            (:mod:`evmeta.models.base.threshold`).

        Robust fits use the CR2 covariance and each row's Satterthwaite df.
        """
        level = resolve_level(level, self.level)
        if newmods is None and self.model.intercept_only:
            X = np.ones((1, 1))
        else:
            X = new_design(self.model, newmods)
        beta = self.coefficients["estimate"].to_numpy()
        out = prediction_frame(X, beta, self.vb, self.tau2, level, self._df_for(X))
        threshold = check_threshold(threshold)
        if threshold is None:
            return out
        return add_threshold_columns(out, threshold, self.tau2, self._df_for(X))

    def summary(self, level: float | None = None) -> Summary:
        """A printable summary; ``.table`` holds coefficients and heterogeneity SDs."""
        level = resolve_level(level, self.level)
        table = self.coef_table(level)
        extra = pd.DataFrame(
            {"estimate": list(self.heterogeneity.values())},
            index=pd.Index(list(self.heterogeneity), name="term"),
        )
        table = pd.concat([table, extra]) if len(extra) else table
        return Summary(self._title(), self._lines(level), table, level)

    @property
    def heterogeneity(self) -> dict[str, float]:
        """Heterogeneity SDs by level, named ``tau[<level>]`` as in Bayesian fits and priors."""
        return {}

    @abstractmethod
    def _title(self) -> str:
        """The summary's heading (each result class names its model)."""

    @abstractmethod
    def _lines(self, level: float) -> list[str]:
        """The summary's text lines at confidence ``level`` (each result class lays out its own)."""

    def _plain_dict(self, scalars: list[str]) -> dict[str, Any]:
        """Scalars as plain Python values, plus mods, the omnibus df, coefficients and versions."""
        out: dict[str, Any] = {}
        for name in scalars:
            value = getattr(self, name)
            out[name] = value.item() if isinstance(value, (np.generic,)) else value
        out["qm_df"] = list(self.qm_df) if isinstance(self.qm_df, tuple) else self.qm_df
        out["mods"] = self.model.formula
        out["coefficients"] = self.coefficients.reset_index(names="term").to_dict(orient="records")
        out["versions"] = dict(self.versions)
        return out


def _t_table(table: pd.DataFrame, df: np.ndarray, level: float) -> pd.DataFrame:
    """Recompute p-values and intervals of a coefficient table with per-row t df."""
    from scipy import special

    crit = special.stdtrit(df, 1 - (1 - level) / 2)
    table = table.copy()
    table["pvalue"] = 2 * special.stdtr(df, -np.abs(table["stat"].to_numpy()))
    table["ci_low"] = table["estimate"] - crit * table["se"]
    table["ci_high"] = table["estimate"] + crit * table["se"]
    return table


def robust_coefficients(
    beta: np.ndarray, names: list[str], robust_cov: Any, level: float
) -> tuple[pd.DataFrame, np.ndarray]:
    """Coefficient table from a CR2 covariance with per-coefficient Satterthwaite df."""
    df = robust_cov.satterthwaite_df(np.eye(len(beta)))
    table = coefficient_table(beta, robust_cov.vcov, names, level, 1.0)
    table = _t_table(table, df, level)
    table["df"] = df
    return table, df
