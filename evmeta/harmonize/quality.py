"""Characterization quality of EV preparations and SYRCLE risk of bias of experiments.

The item definitions are data (``evmeta/data/misev_items.csv``, ``evmetric_items.csv``,
``isct_items.csv``, ``syrcle_items.csv``), so the scores change without code changes.

* ``quality_score``: fraction of the 8 MISEV2018 minimal items reported, in [0, 1]; an
  unreported (blank) item counts as not fulfilled, because reporting quality is what is
  measured (Théry et al. 2018, J Extracell Vesicles 7:1535750).
* ``evmetric_like``: percentage of the 9 EV-METRIC components met. The components are a
  reconstruction of Van Deun et al. (2017, Nat Methods 14:228-232) that could not be
  checked against the primary source, hence "like".
* ``isct_count``: ISCT minimal MSC criteria reported, 0 to 3 (Dominici et al. 2006).
* SYRCLE (Hooijmans et al. 2014): item-level judgements, ``rob_low_count`` (a count of
  low-risk items, shown as such: the tool advises against summary scores) and
  ``rob_low_randomization_blinding`` (low risk on sequence generation and on both
  blinding items), for a sensitivity subset.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from evmeta.data import load_csv
from evmeta.errors import InputError
from evmeta.harmonize.doses import purity_class

#: SYRCLE items that define the "low risk on randomization and blinding" subset.
RANDOMIZATION_BLINDING_ITEMS = ("rob_sequence_generation", "rob_blinding_caregivers", "rob_blinding_assessor")


def misev_columns() -> list[str]:
    """MISEV item columns, in item order."""
    return [row["column"] for row in load_csv("misev_items.csv")]


def syrcle_columns() -> list[str]:
    """SYRCLE item columns, in item order."""
    return [row["column"] for row in load_csv("syrcle_items.csv")]


def _reported(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(0, index=frame.index, dtype=int)
    return (frame[column].astype(object) == "yes").astype(int)


def characterization_quality(preparations: pd.DataFrame) -> pd.DataFrame:
    """Quality scores of each preparation.

    Parameters
    ----------
    preparations : DataFrame
        The ``preparations`` sheet of an :class:`~evmeta.schema.extraction.Extraction`.
        Only ``prep_id`` is required: a missing item column counts as not reported, and
        without ``particles_per_ug_protein`` the purity class is ``unknown``.

    Returns
    -------
    DataFrame
        Indexed by ``prep_id``: ``quality_score`` (0-1), one 0/1 column per MISEV item,
        ``misev_items_reported``, ``evmetric_like`` (percent), ``isct_count`` (0-3) and
        ``purity_class`` (Webber & Clayton).
    """
    out = pd.DataFrame(index=pd.Index(preparations["prep_id"], name="prep_id"))
    items = misev_columns()
    for column in items:
        out[column] = _reported(preparations, column).to_numpy()
    out["misev_items_reported"] = out[items].sum(axis=1)
    out["quality_score"] = out["misev_items_reported"] / len(items)
    components = []
    methods = preparations.get("isolation_method", pd.Series("", index=preparations.index)).astype(str)
    for row in load_csv("evmetric_items.csv"):
        kind, _, what = row["source"].partition(":")
        if kind == "isolation_step":
            met = methods.map(lambda code, step=what: step in code.split("+")).astype(int)
        elif kind == "column":
            met = _reported(preparations, what)
        elif kind == "any":
            met = pd.concat([_reported(preparations, c) for c in what.split("|")], axis=1).max(axis=1)
        else:
            raise InputError(f"evmetric_items.csv: unknown source {row['source']!r}")
        components.append(met.to_numpy())
    out["evmetric_like"] = 100.0 * np.mean(np.vstack(components), axis=0) if components else np.nan
    isct = [row["column"] for row in load_csv("isct_items.csv")]
    out["isct_count"] = sum(_reported(preparations, c).to_numpy() for c in isct)
    if "particles_per_ug_protein" in preparations.columns:
        ratio = pd.to_numeric(preparations["particles_per_ug_protein"], errors="coerce")
        out["purity_class"] = [purity_class(v) for v in ratio]
    else:  # a sheet without the ratio column: the purity is not known
        out["purity_class"] = purity_class(None)
    return out


def risk_of_bias_summary(risk_of_bias: pd.DataFrame, experiments: pd.DataFrame) -> pd.DataFrame:
    """SYRCLE judgements per experiment (an experiment-level row overrides its study's).

    Returns
    -------
    DataFrame
        Indexed by ``experiment_id``: the 10 item columns (low / high / unclear),
        ``rob_low_count`` (number of low-risk items; NaN without judgements) and
        ``rob_low_randomization_blinding`` (bool).
    """
    items = syrcle_columns()
    base = experiments[["experiment_id", "study_id"]].copy()
    rob = risk_of_bias.copy()
    if "experiment_id" not in rob.columns:
        rob["experiment_id"] = None
    study_level = rob[rob["experiment_id"].isna()].drop_duplicates("study_id").set_index("study_id")[items]
    experiment_level = (
        rob[rob["experiment_id"].notna()].drop_duplicates("experiment_id").set_index("experiment_id")[items]
    )
    by_study = study_level.reindex(base["study_id"]).set_axis(base["experiment_id"])
    by_experiment = experiment_level.reindex(base["experiment_id"])
    out = by_experiment.combine_first(by_study)[items]
    out.index.name = "experiment_id"
    judged = out.notna().any(axis=1)
    out["rob_low_count"] = (out[items] == "low").sum(axis=1).where(judged)
    out["rob_low_randomization_blinding"] = (out[list(RANDOMIZATION_BLINDING_ITEMS)] == "low").all(axis=1)
    return out
