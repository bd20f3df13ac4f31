"""The reviewer's chores beside the analysis: bibliographic look-up, dual-extraction
reconciliation, de-duplication of search exports, screening logs, PRISMA 2020 counts and
data digitized from figures."""

from __future__ import annotations

from evmeta._lazy import lazy_namespace

_LAZY = {
    "LookupClient": "evmeta.review.lookup",
    "LookupResult": "evmeta.review.lookup",
    "run_lookup": "evmeta.review.lookup",
    "Reconciliation": "evmeta.review.reconcile",
    "reconcile": "evmeta.review.reconcile",
    "write_reconciliation": "evmeta.review.reconcile",
    "apply_decisions": "evmeta.review.reconcile",
    "cohen_kappa": "evmeta.review.reconcile",
    "SearchRecord": "evmeta.review.dedupe",
    "Deduplication": "evmeta.review.dedupe",
    "deduplicate": "evmeta.review.dedupe",
    "read_search_export": "evmeta.review.dedupe",
    "Screening": "evmeta.review.screening",
    "write_screening_sheet": "evmeta.review.screening",
    "read_screening": "evmeta.review.screening",
    "screening_agreement": "evmeta.review.screening",
    "PrismaCounts": "evmeta.review.prisma",
    "prisma_counts": "evmeta.review.prisma",
    "read_digitized": "evmeta.review.digitized",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_namespace(__name__, _LAZY)

# The function shares its name with its module: bound now, so that an import of the module
# evmeta.review.reconcile (which sets the package attribute) cannot shadow the function.
from evmeta.review.reconcile import reconcile  # noqa: E402, F401
