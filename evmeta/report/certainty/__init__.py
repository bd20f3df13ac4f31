"""A summary of findings with certainty (GRADE adapted to animal studies, Hooijmans et al.
2018): per outcome the five domains with evmeta's suggested judgement and its reason, the
reviewer's overrides, the certainty, and the table as CSV rows and a Word document.

``rules`` holds the judgement rules (pure functions of numbers), ``result`` the frozen
result types and the overall certainty, ``assess`` the step from evidence to result,
``word`` the ``.docx`` writer (python-docx, imported when it is called).
"""

from evmeta.report.certainty.assess import CertaintySettings, OutcomeEvidence, summary_of_findings
from evmeta.report.certainty.result import (
    DOMAINS,
    LEVELS,
    DomainJudgement,
    OutcomeCertainty,
    Override,
    SummaryOfFindings,
    table_rows,
)
from evmeta.report.certainty.rules import JUDGEMENTS, optimal_information_size

__all__ = [
    "DOMAINS",
    "JUDGEMENTS",
    "LEVELS",
    "CertaintySettings",
    "DomainJudgement",
    "OutcomeCertainty",
    "OutcomeEvidence",
    "Override",
    "SummaryOfFindings",
    "optimal_information_size",
    "summary_of_findings",
    "table_rows",
]
