"""Comparisons: one row per (experiment, outcome, time point, EV arm vs its control arm).

:func:`build_comparisons` turns the ``outcomes`` sheet into the table the models use: an
effect size ``yi`` with variance ``vi`` per comparison, the moderators (isolation method,
characterization quality, dose, risk of bias, ...) and the provenance of both rows. Every
outcome row that is not used appears in ``Comparisons.exclusions`` with its reason.

Steps: select (outcomes, time points) -> pair (each EV row with the control row its arm
names in ``arms.control_arm_id``, else the only vehicle_control row of its experiment,
outcome and time point: :mod:`evmeta.harmonize.pairing`) -> size (effect sizes, shared
controls split) -> sign -> annotate (moderators, labels, provenance).

Sign convention: ``yi`` is EV minus control (metafor's group 1 minus group 2), multiplied
by -1 where lower values are better, so that **positive always means benefit of EVs**;
``direction_flipped`` records where that happened. NMD is oriented by construction and is
never flipped.

Modules, one per step: ``select`` (with ``arm_statistics``: mean and SD as used), ``size``,
``sign``, ``annotate`` (with ``reviewer_moderators``: the arms sheet's extra columns);
``exclusions`` (the log of rows not used), ``result`` (:class:`Comparisons`) and ``build``
(:func:`build_comparisons`, the steps in order).
"""

from __future__ import annotations

from evmeta.comparisons.build import build_comparisons
from evmeta.comparisons.exclusions import EXCLUSION_COLUMNS
from evmeta.comparisons.result import Comparisons
from evmeta.comparisons.reviewer_moderators import arm_moderators
from evmeta.comparisons.size import NMD_SHARE

__all__ = ["EXCLUSION_COLUMNS", "NMD_SHARE", "Comparisons", "arm_moderators", "build_comparisons"]
