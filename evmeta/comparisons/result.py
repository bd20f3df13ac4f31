"""What :func:`~evmeta.comparisons.build_comparisons` returns (:class:`Comparisons`): the
comparison table, the log of outcome rows not used, the measure and the build's settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from evmeta.schema.extraction import NOTE_COLUMNS


@dataclass
class Comparisons:
    """The comparison table and the log of outcome rows not used.

    Attributes
    ----------
    table : DataFrame
        One row per comparison (see :func:`build_comparisons` for the columns).
    exclusions : DataFrame
        ``sheet``, ``row`` (Excel row on the outcomes sheet), ``outcome_id``, ``arm_id``,
        ``experiment_id``, ``outcome``, ``reason``.
    measure : str
        Effect measure used (after the NMD/SMD rule).
    settings : dict
        Arguments of the build, for provenance.
    validation_notes : DataFrame
        The extraction's validation notes (:meth:`evmeta.schema.extraction.Extraction.notes_frame`:
        ``sheet, row, cell, column, value, check, message``), what ``validation_notes.csv``
        holds: rows analysed with a remark (SD-or-SEM signs, unreadable dose texts, ...).
    """

    table: pd.DataFrame
    exclusions: pd.DataFrame
    measure: str
    settings: dict = field(default_factory=dict)
    validation_notes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=NOTE_COLUMNS))

    def __len__(self) -> int:
        return len(self.table)

    def to_frame(self) -> pd.DataFrame:
        """The comparison table (a copy)."""
        return self.table.copy()

    def summary(self) -> str:
        """Counts of comparisons, studies and exclusions by reason."""
        t = self.table
        lines = [
            f"{len(t)} comparisons ({self.measure}) from {t['study_id'].nunique() if len(t) else 0} studies, "
            f"{t['experiment_id'].nunique() if len(t) else 0} experiments; {len(self.exclusions)} outcome rows excluded"
        ]
        if len(self.exclusions):
            for reason, count in self.exclusions["reason"].str.split(":").str[0].value_counts().items():
                lines.append(f"  {count:>5}  {reason}")
        return "\n".join(lines)
