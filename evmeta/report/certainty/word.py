"""The summary of findings as a Word document a journal takes: a landscape page with a real
table (a header row repeated on every page), the effect with its interval in the analysis
measure, a lettered footnote for every reason to rate down or overridden judgement, and the
GRADE definitions of the four levels. python-docx is imported when a document is written."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from evmeta.report.certainty.result import SummaryOfFindings, table_rows

if TYPE_CHECKING:  # python-docx is imported when a document is written
    import pandas as pd
    from docx.document import Document
    from docx.shared import Length

#: GRADE's meaning of each level (Balshem et al. 2011, J Clin Epidemiol 64:401-406).
LEVEL_MEANINGS = (
    ("High", "we are very confident that the true effect lies close to the estimate."),
    ("Moderate", "the true effect is likely to be close to the estimate, but may be substantially different."),
    ("Low", "the true effect may be substantially different from the estimate."),
    ("Very low", "the true effect is likely to be substantially different from the estimate."),
)
FONT, SIZE_PT, NOTE_PT = "Arial", 9, 8


def write_summary_docx(
    summary: SummaryOfFindings,
    path: str | Path,
    title: str = "",
    question: str = "",
    setting: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write ``summary`` to ``path`` (``summary_of_findings.docx``) and return the path.

    Parameters
    ----------
    summary : SummaryOfFindings
    path : str or Path
        The file to write; an existing file is replaced only by the caller's choice (the run
        writes into its own new report folder).
    title, question : str
        The analysis title and review question, printed above the table.
    setting : sequence of (label, text)
        Lines of the table's head as GRADE's summary-of-findings tables have them, e.g.
        ``("Population", "rat and mouse models of stroke")``, ``("Intervention", ...)``.
    """
    import docx  # python-docx, a core dependency (light: pure Python over lxml)
    from docx.enum.section import WD_ORIENT
    from docx.shared import Mm, Pt

    document = docx.Document()
    style = document.styles["Normal"]
    style.font.name, style.font.size = FONT, Pt(SIZE_PT)
    section = document.sections[0]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = Mm(297), Mm(210)
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, side, Mm(15))
    document.add_heading("Summary of findings", level=1)
    if title:
        document.add_paragraph(title)
    if question:
        document.add_paragraph(f"Question: {question}")
    for label, text in setting:
        paragraph = document.add_paragraph()
        paragraph.add_run(f"{label}: ").bold = True
        paragraph.add_run(text)
    frame, notes = table_rows(summary)
    _table(document, frame)
    _notes(document, summary, notes, Pt(NOTE_PT))
    path = Path(path)
    document.save(str(path))
    return path


def _table(document: Document, frame: pd.DataFrame) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    table = document.add_table(rows=1, cols=len(frame.columns))
    table.style = "Table Grid"
    header = table.rows[0]
    flag = OxmlElement("w:tblHeader")  # repeat the header row on every page
    flag.set(qn("w:val"), "true")
    header._tr.get_or_add_trPr().append(flag)
    for cell, name in zip(header.cells, frame.columns, strict=True):
        cell.text = ""
        cell.paragraphs[0].add_run(str(name)).bold = True
    for row in frame.itertuples(index=False):
        cells = table.add_row().cells
        for cell, value in zip(cells, row, strict=True):
            text, _, mark = str(value).partition(" [")
            cell.text = text
            if mark:  # the footnote letter as a superscript, as journals set it
                cell.paragraphs[0].add_run(mark.rstrip("]")).font.superscript = True


def _notes(
    document: Document, summary: SummaryOfFindings, notes: list[tuple[str, str, str, str]], size: Length
) -> None:
    lines = [f"{letter} {outcome}: {text}" for letter, outcome, _, text in notes]
    lines.append(
        "Certainty started at high for controlled animal experiments and was rated down one level for a "
        "serious and two for a very serious concern (GRADE for animal studies, Hooijmans et al. 2018, "
        "PLoS ONE 13:e0187271). * the reviewer's judgement, replacing evmeta's suggestion."
    )
    settings = f"alpha = {summary.alpha:g}, power = {summary.power:g}"
    if summary.important_effect is not None:
        settings = f"important effect {summary.important_effect:g} (analysis measure); " + settings
    lines.append(
        "Optimal information size: animals a two-arm trial needs to detect the important standardized "
        f"effect ({settings}); CI, confidence interval; k, comparisons."
    )
    lines += [f"{level}: {meaning}" for level, meaning in LEVEL_MEANINGS]
    lines += list(summary.notes)
    for line in lines:
        paragraph = document.add_paragraph()
        paragraph.add_run(line).font.size = size
