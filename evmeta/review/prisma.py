"""PRISMA 2020 flow counts, derived from the review's files (never typed).

``prisma_counts`` reads the search exports (one file per database), the de-duplicated
records, the screening log and the extraction workbook, checks that they tell one story
(every kept record is screened or counted as removed, every included report belongs to a
study, every study comes from a report included in the screening log: matched by the
study's record_id, or by its DOI when it has none; a study that cannot be matched is
refused, or named in a note when it carries neither), and returns the numbers of the PRISMA 2020 flow diagram for new systematic reviews
that searched databases and registers:

* identification: records per database, duplicate records removed, records removed for
  other reasons (kept by dedupe but deleted from the screening log, e.g. retracted);
* screening: records screened, records excluded, reports sought for retrieval, reports not
  retrieved, reports assessed for eligibility, reports excluded with reasons;
* included: studies included in the review, reports of included studies.

Reference: Page MJ, McKenzie JE, Bossuyt PM, et al. The PRISMA 2020 statement: an updated
guideline for reporting systematic reviews. BMJ 2021;372:n71 (Figure 1, the flow diagram
template for new reviews that included searches of databases and registers only).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from evmeta.errors import PrismaError, Problem
from evmeta.review.dedupe import SearchRecord, normalize_doi, read_search_export
from evmeta.review.screening import (
    EXCLUSION_REASONS,
    Screening,
    ScreeningError,
    check_against_deduplicated,
    read_deduplicated,
    read_screening,
)


@dataclass(frozen=True)
class PrismaCounts:
    """Every number of the PRISMA 2020 flow diagram (databases and registers).

    Attributes
    ----------
    databases : dict of str -> int
        Records identified per database (export file stem -> records in it).
    registers : dict of str -> int
        Records identified per register (e.g. PreclinicalTrials.eu), the same way.
    duplicates_removed, removed_other : int
        Records removed before screening: duplicates, and kept records absent from the
        screening log (``removed_other_ids`` lists their record_id).
    screened, excluded_screening : int
        Records screened on title/abstract; records excluded there.
    sought, not_retrieved, assessed : int
        Reports sought for retrieval, not retrieved, assessed for eligibility.
    excluded_reasons : dict of str -> int
        Reports excluded at full text, per reason (standard reason codes).
    studies_included, reports_included : int
        New studies included in the review; reports of those studies.
    notes : list of str
        Checks that could not be made (e.g. no record_id column in the studies sheet).
    """

    databases: dict[str, int]
    duplicates_removed: int
    removed_other: int
    screened: int
    excluded_screening: int
    sought: int
    not_retrieved: int
    assessed: int
    excluded_reasons: dict[str, int]
    studies_included: int
    reports_included: int
    removed_other_ids: tuple[int, ...] = ()
    notes: list[str] = field(default_factory=list)
    registers: dict[str, int] = field(default_factory=dict)

    @property
    def identified(self) -> int:
        """Records identified across all databases and registers."""
        return sum(self.databases.values()) + sum(self.registers.values())

    @property
    def excluded_full_text(self) -> int:
        """Reports excluded at full text, all reasons."""
        return sum(self.excluded_reasons.values())

    def to_frame(self) -> pd.DataFrame:
        """One row per box line: stage, box, item, n (the counts CSV)."""
        rows = [
            ("identification", "records identified", f"{kind}: {name}", n)
            for kind, sources in [("database", self.databases), ("register", self.registers)]
            for name, n in sources.items()
        ]
        rows += [
            ("identification", "records identified", "total", self.identified),
            (
                "identification",
                "records removed before screening",
                "duplicate records removed",
                self.duplicates_removed,
            ),
            (
                "identification",
                "records removed before screening",
                "records removed for other reasons",
                self.removed_other,
            ),
            ("screening", "records screened", "records screened", self.screened),
            ("screening", "records excluded", "records excluded", self.excluded_screening),
            ("screening", "reports sought for retrieval", "reports sought for retrieval", self.sought),
            ("screening", "reports not retrieved", "reports not retrieved", self.not_retrieved),
            (
                "screening",
                "reports assessed for eligibility",
                "reports assessed for eligibility",
                self.assessed,
            ),
        ]
        rows += [
            ("screening", "reports excluded", f"reason: {r}", n) for r, n in self.excluded_reasons.items()
        ]
        rows += [
            ("screening", "reports excluded", "total", self.excluded_full_text),
            ("included", "studies included in review", "studies included in review", self.studies_included),
            ("included", "studies included in review", "reports of included studies", self.reports_included),
        ]
        return pd.DataFrame(rows, columns=["stage", "box", "item", "n"])


#: Databases and registers as the diagram names them, by the words reviewers name their
#: export files with (lowercase, letters and digits only).
KNOWN_DATABASES = {
    "pubmed": "PubMed",
    "medline": "MEDLINE",
    "embase": "Embase",
    "scopus": "Scopus",
    "wos": "Web of Science",
    "webofscience": "Web of Science",
    "webofknowledge": "Web of Science",
    "cochrane": "Cochrane Library",
    "central": "CENTRAL",
    "cinahl": "CINAHL",
    "psycinfo": "PsycINFO",
    "biosis": "BIOSIS Previews",
    "lilacs": "LILACS",
    "cnki": "CNKI",
    "wanfang": "Wanfang Data",
    "europepmc": "Europe PMC",
    "googlescholar": "Google Scholar",
    "clinicaltrials": "ClinicalTrials.gov",
    "clinicaltrialsgov": "ClinicalTrials.gov",
    "ictrp": "WHO ICTRP",
    "preclinicaltrials": "PreclinicalTrials.eu",
    "preclinicaltrialseu": "PreclinicalTrials.eu",
}


def database_name(path: Path, records: Sequence[SearchRecord] = ()) -> str:
    """Name shown for one export in the diagram.

    The database the export itself names (RIS ``DB``, a CSV ``Database`` column; the most
    frequent one), else a known database the file name starts with (``pubmed.nbib`` ->
    PubMed, ``web_of_science_2024.ris`` -> Web of Science), else the file stem, capitalized.
    """
    stated = Counter(r.database.strip() for r in records if r.database.strip())
    if stated:
        return stated.most_common(1)[0][0]
    words = [w for w in re.split(r"[^0-9a-z]+", path.stem.casefold()) if w]
    for end in range(len(words), 0, -1):
        if (known := KNOWN_DATABASES.get("".join(words[:end]))) is not None:
            return known
    stem = path.stem.replace("_", " ")
    return stem[:1].upper() + stem[1:] if stem.islower() else stem


def _export_names(exports: list[Path]) -> dict[Path, tuple[str, int]]:
    """Each export's diagram name and number of records; names shared by several exports
    (two Embase files) get the file stem in parentheses."""
    read: dict[Path, tuple[str, int]] = {}
    stems: set[str] = set()
    for path in exports:
        if not path.exists():
            raise PrismaError(f"search export {path} does not exist")
        if path.stem in stems:
            raise PrismaError(
                f"two exports are named {path.stem!r}; give each database's export its own file "
                "name (the name labels the database in the diagram)"
            )
        stems.add(path.stem)
        try:
            records = read_search_export(path)
        except ValueError as exc:
            raise PrismaError(str(exc)) from None
        read[path] = (database_name(path, records), len(records))
    shared = Counter(name for name, _ in read.values())
    return {
        path: (f"{name} ({path.stem})" if shared[name] > 1 else name, n) for path, (name, n) in read.items()
    }


def count_exports(exports: list[str | Path]) -> dict[str, int]:
    """Records in each search export (one file per database or register), by diagram name."""
    return dict(_export_names([Path(p) for p in exports]).values())


def _check_identification(databases: dict[str, int], exports: list[Path], dedupe: pd.DataFrame) -> None:
    if sum(databases.values()) != len(dedupe):
        raise PrismaError(
            f"the search exports hold {sum(databases.values())} records but the de-duplicated file has "
            f"{len(dedupe)}: run `evmeta dedupe` on exactly these exports ({', '.join(p.name for p in exports)})"
        )
    if "source_file" in dedupe:
        by_file = dedupe["source_file"].fillna("").value_counts().to_dict()
        for path in exports:
            expected = len(read_search_export(path))
            if by_file.get(path.name, 0) != expected:
                raise PrismaError(
                    f"{path.name}: {expected} records in the export, {by_file.get(path.name, 0)} in the "
                    "de-duplicated file; run `evmeta dedupe` again on these exports"
                )


def _screening_counts(screening: Screening) -> dict[str, object]:
    table = screening.table
    ft = table["ft_decision"]
    reasons = table.loc[ft == "exclude", "exclusion_reason"].value_counts()
    ordered = {r: int(reasons[r]) for r in EXCLUSION_REASONS if r in reasons.index}
    return {
        "screened": len(table),
        "excluded_screening": int((table["ta_decision"] == "exclude").sum()),
        "sought": int((table["ta_decision"] == "include").sum()),
        "not_retrieved": int((ft == "not_retrieved").sum()),
        "assessed": int(ft.isin(["include", "exclude"]).sum()),
        "excluded_reasons": ordered,
        "reports_included": int((table["final_decision"] == "include").sum()),
    }


def _record_ids(text: object) -> list[int]:
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return []
    return [int(x) for x in re.findall(r"\d+", str(text))]


def _studies_sheet(extraction: str | Path) -> pd.DataFrame:
    from evmeta.schema.validation.validate import validate_extraction

    book, problems = validate_extraction(extraction)
    errors = [p for p in problems if p.severity == "error" and p.sheet == "studies"]
    if book is None or errors:
        shown = "; ".join(str(p) for p in (errors or problems)[:5])
        raise PrismaError(f"{Path(extraction).name}: the studies sheet cannot be counted: {shown}")
    return book.sheets["studies"]


def _match_by_doi(row: dict, by_doi: dict[str, tuple[int, str]], problems: list[str]) -> int | None:
    """record_id of the included report whose DOI the study carries; a problem when there is none."""
    doi = normalize_doi(str(row.get("doi") or ""))
    if doi not in by_doi:
        problems.append(
            f"studies!{row['_row']} doi {doi} (no record_id) is not a record of the screening log: "
            "a study must come from a report included at full text"
        )
        return None
    rid, decision = by_doi[doi]
    if decision != "include":
        problems.append(
            f"studies!{row['_row']} doi {doi} (no record_id) is record_id {rid} of the screening log, "
            f"which is not included (final_decision {decision or 'empty'})"
        )
        return None
    return rid


def _studies(extraction: str | Path, screening: Screening, notes: list[str]) -> int:
    """Studies in the extraction, each matched to a report included in the screening log.

    A study is matched by its record_id(s) or, when it has none, by its DOI. A study that
    names a report the log did not include is refused (PrismaError); a study with neither
    record_id nor DOI cannot be matched and is named in a note, as are included reports that
    no DOI-matched study claims (other reports of a study, or a study missing from the sheet).
    """
    studies = _studies_sheet(extraction)
    table = screening.table
    included = set(screening.included["record_id"].astype(int))
    by_doi = {
        normalize_doi(str(doi)): (int(rid), str(decision or ""))
        for rid, doi, decision in zip(table["record_id"], table["doi"], table["final_decision"], strict=True)
        if isinstance(doi, str) and normalize_doi(doi)
    }
    all_record_ids = "record_id" in studies and studies["record_id"].notna().all()
    if "record_id" not in studies or studies["record_id"].isna().all():
        notes.append(
            "the studies sheet has no record_id column filled, so included reports were matched to "
            "studies by DOI"
        )
    problems: list[str] = []
    claimed: dict[int, list[int]] = {}
    unmatched: list[int] = []
    for row in studies.to_dict("records"):
        rids = _record_ids(row.get("record_id"))
        for rid in rids:
            if rid not in included:
                problems.append(
                    f"studies!{row['_row']} record_id {rid} is not a report included in the screening log"
                )
        if not rids and normalize_doi(str(row.get("doi") or "")):
            rids = [rid for rid in [_match_by_doi(row, by_doi, problems)] if rid is not None]
        elif not rids:
            unmatched.append(int(row["_row"]))
        for rid in rids:
            claimed.setdefault(rid, []).append(int(row["_row"]))
    unclaimed = sorted(included - set(claimed))
    if all_record_ids:
        problems += [
            f"screening: record_id {rid} is included at full text but no study in the studies sheet carries it"
            for rid in unclaimed
        ]
    if problems:
        raise PrismaError(
            "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        )
    _note_unmatched(unmatched, [] if all_record_ids else unclaimed, claimed, notes)
    return len(studies)


def _note_unmatched(
    rows: list[int], unclaimed: list[int], claimed: dict[int, list[int]], notes: list[str]
) -> None:
    if rows:
        notes.append(
            f"{len(rows)} stud{'y' if len(rows) == 1 else 'ies'} without record_id or doi counted but not "
            f"matched to an included report: studies!{', studies!'.join(map(str, rows))}"
        )
    if unclaimed:
        notes.append(
            f"{len(unclaimed)} included report(s) carried by no study (another report of a study matched by "
            f"DOI, or a study missing from the studies sheet): record_id {', '.join(map(str, unclaimed))}"
        )
    shared = {rid: rows for rid, rows in claimed.items() if len(rows) > 1}
    for rid, rows in sorted(shared.items()):
        notes.append(
            f"record_id {rid} is the report of several studies: studies!{', studies!'.join(map(str, rows))}"
        )


def prisma_counts(
    search: list[str | Path],
    dedupe: str | Path,
    screening: str | Path | Screening,
    extraction: str | Path,
    *,
    registers: Sequence[str | Path] = (),
) -> PrismaCounts:
    """Derive the PRISMA 2020 counts from the review's files (see the module docstring).

    Parameters
    ----------
    search : list of path
        Search exports, one per database (RIS, MEDLINE or CSV), as given to ``evmeta dedupe``.
    dedupe : path
        ``deduplicated.csv`` written by ``evmeta dedupe`` from those exports.
    screening : path or Screening
        The filled screening log (``evmeta screen-sheet``).
    extraction : path
        The extraction workbook; its ``studies`` sheet holds one row per included study.
    registers : list of path, optional
        Exports of study registers searched, also given to ``evmeta dedupe``.

    Raises
    ------
    PrismaError
        When the files disagree (counts, record ids), naming the file and row.
    """
    exports = [Path(p) for p in search]
    register_exports = [Path(p) for p in registers]
    if not exports:
        raise PrismaError("give at least one search export (--search)")
    named = _export_names([*exports, *register_exports])
    identified = dict(named.values())
    databases = dict(named[p] for p in exports)
    table = read_deduplicated(dedupe)
    _check_identification(identified, [*exports, *register_exports], table)
    if not isinstance(screening, Screening):
        screening = read_screening(screening)
    unknown = check_against_deduplicated(screening, table)
    if unknown:
        raise ScreeningError(unknown)
    kept = set(table.loc[table["keep"], "record_id"].astype(int))
    missing = tuple(sorted(kept - set(screening.table["record_id"].astype(int))))
    notes: list[str] = []
    if missing:
        notes.append(
            f"{len(missing)} record(s) kept by dedupe are not in the screening log and are counted as "
            f"removed for other reasons: record_id {', '.join(map(str, missing))}"
        )
    counts = _screening_counts(screening)
    studies = _studies(extraction, screening, notes)
    return PrismaCounts(
        databases=databases,
        registers=dict(named[p] for p in register_exports),
        duplicates_removed=int((~table["keep"]).sum()),
        removed_other=len(missing),
        studies_included=studies,
        removed_other_ids=missing,
        notes=notes,
        **counts,  # type: ignore[arg-type]
    )


def problems_of(error: Exception) -> list[Problem]:
    """The problems of a ScreeningError, or one problem for any other PRISMA error."""
    if isinstance(error, ScreeningError):
        return error.problems
    return [Problem("prisma", None, None, None, str(error))]
