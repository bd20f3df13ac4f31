"""What an import did (:class:`WideImport`): the rows written per sheet, the log, the notes
for the reviewer and the moderators kept, with a printable summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from evmeta.schema.wide_import.log import fold_reasons


@dataclass
class WideImport:
    """What :func:`import_wide` did.

    Attributes
    ----------
    data : dict of str -> list of dict
        Rows written per sheet.
    log : DataFrame
        One row per table row: ``table_row`` (row number in the table, header = 1),
        ``study_id``, ``status`` (imported / skipped), ``treat_outcome_id``,
        ``control_outcome_id``, ``reason``. A skipped row whose control arm was imported
        with other rows sharing it has that control's ``control_outcome_id``. Then one row
        per table column the map does not read: ``status`` "not imported", ``column`` its
        header, ``reason`` its letter (``table_row`` empty).
    notes : list of str
        Placeholders and other remarks, as sentences.
    workbook : Path or None
        The workbook written (None before writing).
    moderators : dict of str -> str
        Each ``[moderators]`` name and its type: ``numeric`` or ``categorical``.
    """

    data: dict[str, list[dict[str, Any]]]
    log: pd.DataFrame
    notes: list[str]
    workbook: Path | None = None
    moderators: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """Counts, then one line per cause of skipped rows (folded), the columns not
        imported and the notes."""
        rows = self.log[self.log["status"] != "not imported"]
        imported = int((rows["status"] == "imported").sum())
        skipped = len(rows) - imported
        controls = sum(1 for a in self.data["arms"] if a["role"] == "vehicle_control")
        lines = [
            f"{imported} comparisons from {len(self.data['studies'])} studies imported "
            f"({controls} control arms); {skipped} table rows skipped"
        ]
        lines.extend(fold_reasons(rows[rows["status"] == "skipped"]))
        unread = self.log.loc[self.log["status"] == "not imported", "column"].tolist()
        if unread:
            lines.append(f"{len(unread)} table column(s) not imported (not in the map): {', '.join(unread)}")
        if self.moderators:
            kept = ", ".join(f"{name} ({kind})" for name, kind in self.moderators.items())
            lines.append(f"moderators kept on the arms sheet: {kept}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)
