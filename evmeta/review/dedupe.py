"""De-duplication of literature-search exports (RIS, PubMed MEDLINE, CSV).

Records are normalized (DOI; title case, punctuation, accents and HTML entities; author
surnames; year; first page) and clustered in two passes: identical DOIs, then a fuzzy
comparison of title, authors and year inside blocks (records sharing the first words of
their title, or the first author and year), so that 50,000 records need a few hundred
thousand comparisons, not a billion. Inside a block, records identical after normalization
are merged in one pass; a block still larger than ``MAX_BLOCK`` distinct records is
compared by a vectorized title matcher (rapidfuzz ``cdist``) up to ``MAX_VECTOR_BLOCK``;
a block larger still is reported (``blocks_not_compared`` and a warning), never skipped
silently. Two records with different DOIs are never merged. Clusters come from a
union-find; the most complete record of each cluster is kept.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pandas as pd
from rapidfuzz import fuzz, process

from evmeta._paths import PathError, read_bytes_capped
from evmeta.sheets.reader import UnreadableInput

#: Title similarity (0-100) at which two records with compatible authors and year match.
TITLE_MATCH = 92.0
#: Title similarity at which authors are not needed (identical titles, missing authors).
TITLE_ALONE = 98.0
#: Minimum length (characters) of a truncated title for a prefix match.
MIN_PREFIX = 40
#: Distinct records in a block compared pair by pair.
MAX_BLOCK = 400
#: Distinct records in a block compared by the vectorized title matcher (C speed,
#: 5,000 x 5,000 titles in a few seconds); larger blocks are reported, not compared.
MAX_VECTOR_BLOCK = 5_000


@dataclass
class SearchRecord:
    """One record of a search export, as read."""

    title: str = ""
    authors: list[str] = field(default_factory=list)
    year: int | None = None
    doi: str = ""
    journal: str = ""
    pages: str = ""
    pmid: str = ""
    source: str = ""
    #: Name of the export file the record came from (one file per database, for PRISMA).
    source_file: str = ""
    #: Database the export names for the record (RIS ``DB``, a CSV ``Database`` column), or "".
    database: str = ""


# --- reading ---------------------------------------------------------------------------

_RIS_TAG = re.compile(r"^([A-Z][A-Z0-9])  -(?: (.*))?$")
_MEDLINE_TAG = re.compile(r"^([A-Z]{2,4})\s*- (.*)$")


def _year(text: str) -> int | None:
    match = re.search(r"(1[89]\d\d|20\d\d)", text or "")
    return int(match.group(1)) if match else None


def read_ris(text: str) -> list[SearchRecord]:
    records, current = [], SearchRecord(source="ris")
    for line in text.splitlines():
        match = _RIS_TAG.match(line.rstrip())
        if not match:
            continue
        tag, value = match.group(1), (match.group(2) or "").strip()
        if tag == "TY" and (current.title or current.authors or current.doi):
            # A new record starts without the previous one's ER line: keep them apart.
            records.append(current)
            current = SearchRecord(source="ris")
        if tag == "ER":
            records.append(current)
            current = SearchRecord(source="ris")
        elif tag in {"TI", "T1"} and not current.title:
            current.title = value
        elif tag in {"AU", "A1"}:
            current.authors.append(value)
        elif tag in {"PY", "Y1", "DA"} and current.year is None:
            current.year = _year(value)
        elif tag == "DO":
            current.doi = value
        elif tag in {"JO", "JF", "T2", "JA"} and not current.journal:
            current.journal = value
        elif tag == "SP":
            current.pages = value
        elif tag == "AN" and value.isdigit():
            current.pmid = value
        elif tag == "DB":  # RIS "name of database"
            current.database = value
    if current.title or current.authors or current.doi:
        records.append(current)
    return records


def read_medline(text: str) -> list[SearchRecord]:
    records: list[SearchRecord] = []
    for block in re.split(r"\n\s*\n(?=PMID-)", text.strip()):
        fields: list[tuple[str, str]] = []
        for line in block.splitlines():
            if line.startswith("      ") and fields:
                tag, value = fields[-1]
                fields[-1] = (tag, value + " " + line.strip())
                continue
            match = _MEDLINE_TAG.match(line)
            if match:
                fields.append((match.group(1), match.group(2).strip()))
        if not fields:
            continue
        record = SearchRecord(source="medline")
        full_authors = [v for t, v in fields if t == "FAU"]
        record.authors = full_authors or [v for t, v in fields if t == "AU"]
        for tag, value in fields:
            if tag == "TI":
                record.title = value
            elif tag == "DP":
                record.year = _year(value)
            elif tag in {"LID", "AID"} and "[doi]" in value and not record.doi:
                record.doi = value.replace("[doi]", "").strip()
            elif tag in {"JT", "TA"} and not record.journal:
                record.journal = value
            elif tag == "PG":
                record.pages = value
            elif tag == "PMID":
                record.pmid = value
        records.append(record)
    return records


_CSV_COLUMNS = frozenset({"title", "ti", "article title", "doi", "do", "authors", "author", "au", "pmid"})


def read_csv_records(text: str) -> list[SearchRecord]:
    reader = csv.DictReader(io.StringIO(text))
    names = {n.lower().strip(): n for n in (reader.fieldnames or []) if n}
    if not names.keys() & _CSV_COLUMNS:
        found = ", ".join(repr(n) for n in names) or "none"
        raise UnreadableInput(
            f"the CSV export has none of the columns dedupe reads ({', '.join(sorted(_CSV_COLUMNS))}); "
            f"its columns are: {found}"
        )

    def get(row: dict, *keys: str) -> str:
        for key in keys:
            if key in names and row.get(names[key]):
                return str(row[names[key]]).strip()
        return ""

    records = []
    for row in reader:
        authors = get(row, "authors", "author", "au")
        records.append(
            SearchRecord(
                title=get(row, "title", "ti", "article title"),
                authors=[a.strip() for a in re.split(r";|\band\b|\|", authors) if a.strip()],
                year=_year(get(row, "year", "py", "publication year", "date")),
                doi=get(row, "doi", "do"),
                journal=get(row, "journal", "source", "jo", "source title"),
                pages=get(row, "pages", "sp", "start page"),
                pmid=get(row, "pmid"),
                source="csv",
                database=get(row, "database", "db"),
            )
        )
    return records


def read_search_export(path: str | Path) -> list[SearchRecord]:
    """Read a RIS (.ris), MEDLINE (.nbib, .txt) or CSV (.csv) export."""
    path = Path(path)
    try:
        raw = read_bytes_capped(path, what="search export")
    except PathError as exc:
        raise UnreadableInput(str(exc)) from None
    if b"\x00" in raw[:65536] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnreadableInput(f"{path.name} holds binary data; expected a text export (RIS, MEDLINE or CSV)")
    try:
        text = raw.decode("utf-16") if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    suffix = path.suffix.lower()
    records = None
    if suffix == ".csv":
        try:
            records = read_csv_records(text)
        except csv.Error as exc:
            raise UnreadableInput(f"{path.name} is not a well-formed CSV file: {exc}") from None
    elif suffix == ".ris" or re.search(r"^TY  - ", text, re.MULTILINE):
        records = read_ris(text)
    elif suffix in {".nbib", ".txt", ".medline"} or text.lstrip().startswith("PMID-"):
        records = read_medline(text)
    else:
        raise UnreadableInput(
            f"{path.name}: expected a RIS (.ris), PubMed MEDLINE (.nbib/.txt) or CSV export"
        )
    if not records:
        raise UnreadableInput(
            f"{path.name}: no records found; expected a {suffix.lstrip('.').upper() or 'search'} export "
            "(RIS records start with 'TY  - ' and end with 'ER  - ')"
        )
    for record in records:
        record.source_file = path.name
    return records


# --- normalization ---------------------------------------------------------------------


def normalize_text(text: str) -> str:
    """Lower case, no accents, no HTML entities or tags, punctuation as spaces."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", text or ""))
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[^0-9a-z]+", " ", text.casefold()).strip()


def normalize_doi(doi: str) -> str:
    doi = (doi or "").strip().casefold()
    doi = re.sub(r"^(https?://(dx\.)?doi\.org/|doi:\s*)", "", doi)
    return doi.rstrip(".;,") if doi.startswith("10.") else ""


def surname(author: str) -> str:
    """Surname from 'Smith, John', 'Smith J' or 'John Smith'."""
    author = author.strip()
    if "," in author:
        name = author.split(",")[0]
    else:
        parts = author.split()
        # 'Smith JA' (MEDLINE AU): surname first when the last token is initials.
        name = (
            parts[0]
            if len(parts) > 1 and parts[-1].isupper() and len(parts[-1]) <= 3
            else (parts[-1] if parts else "")
        )
    return normalize_text(name)


_NORMALIZED_COLUMNS = [
    "record_id",
    "title_norm",
    "doi_norm",
    "first_author",
    "authors_norm",
    "year",
    "page",
    "title",
    "doi",
    "journal",
    "pmid",
    "source",
    "source_file",
    "n_fields",
]


def normalize(records: list[SearchRecord]) -> pd.DataFrame:
    rows = []
    for index, record in enumerate(records, start=1):
        surnames = [s for s in (surname(a) for a in record.authors) if s]
        rows.append(
            {
                "record_id": index,
                "title_norm": normalize_text(record.title),
                "doi_norm": normalize_doi(record.doi),
                "first_author": surnames[0] if surnames else "",
                "authors_norm": surnames,
                "year": record.year,
                "page": re.split(r"[-–]", record.pages or "")[0].strip(),
                "title": record.title,
                "doi": record.doi,
                "journal": record.journal,
                "pmid": record.pmid,
                "source": record.source,
                "source_file": record.source_file,
                "n_fields": sum(
                    bool(x)
                    for x in [
                        record.title,
                        record.doi,
                        record.journal,
                        record.year,
                        record.authors,
                        record.pages,
                    ]
                ),
            }
        )
    return pd.DataFrame(rows, columns=_NORMALIZED_COLUMNS)


# --- clustering ------------------------------------------------------------------------


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def title_similarity(a: str, b: str) -> float:
    """Similarity of two normalized titles; a truncated title matches its full version."""
    if not a or not b:
        return 0.0
    score = fuzz.ratio(a, b)
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    if len(short) >= MIN_PREFIX and long.startswith(short[: max(MIN_PREFIX, int(len(short) * 0.9))]):
        score = max(score, 99.0 if long.startswith(short.rsplit(" ", 1)[0]) else score)
    return float(score)


class Comparable(NamedTuple):
    """The normalized fields of one record that matching compares (a row of ``normalize``).

    ``year`` is as the normalized frame holds it: a number, or None/NaN when unknown.
    """

    title_norm: str
    doi_norm: str
    first_author: str
    authors_norm: list[str]
    year: float | None
    page: str


def comparable_rows(frame: pd.DataFrame) -> list[Comparable]:
    """The rows of a ``normalize`` frame as :class:`Comparable` records, in frame order."""
    columns = frame[list(Comparable._fields)]
    return [Comparable._make(values) for values in columns.itertuples(index=False, name=None)]


def _compatible(x: Comparable, y: Comparable) -> bool:
    if x.doi_norm and y.doi_norm and x.doi_norm != y.doi_norm:
        return False
    if x.year and y.year and abs(x.year - y.year) > 1:
        return False
    return True


#: Surname similarity at which two author names are the same person ("muller" ~ "mueller").
SURNAME_MATCH = 85.0


def _authors_agree(x: Comparable, y: Comparable) -> bool | None:
    """True when the two author lists share a surname (order ignored, transliterations allowed)."""
    if not x.authors_norm or not y.authors_norm:
        return None
    first, second = set(x.authors_norm[:6]), set(y.authors_norm[:6])
    if first & second:
        return True
    return any(fuzz.ratio(a, b) >= SURNAME_MATCH for a in first for b in second if len(a) > 3 and len(b) > 3)


def pair_score(x: Comparable, y: Comparable) -> float:
    """Similarity in [0, 100] used to decide a match (0 when incompatible)."""
    if x.doi_norm and x.doi_norm == y.doi_norm:
        return 100.0
    if not _compatible(x, y):
        return 0.0
    title = title_similarity(x.title_norm, y.title_norm)
    authors = _authors_agree(x, y)
    if authors is False:
        return title if title >= 99.5 and x.year == y.year else 0.0
    if title >= TITLE_ALONE or (title >= TITLE_MATCH and authors):
        return title
    return 0.0


def _blocks(frame: pd.DataFrame) -> dict[str, list[int]]:
    blocks: dict[str, list[int]] = defaultdict(list)
    for position, row in enumerate(comparable_rows(frame)):
        words = row.title_norm.split()
        if len(words) >= 3:
            blocks["t:" + " ".join(words[:4])].append(position)
        if row.first_author and row.year:
            blocks[f"a:{row.first_author}:{row.year}"].append(position)
    return blocks


#: What makes two records identical after normalization (title, DOI, authors, year, page).
_Signature = tuple[str, str, tuple[str, ...], float | None, str]


def _signature(row: Comparable) -> _Signature:
    return (row.title_norm, row.doi_norm, tuple(row.authors_norm), row.year, row.page)


def _link(
    i: int,
    j: int,
    rows: list[Comparable],
    union: _UnionFind,
    best_score: list[float],
    compared: set[tuple[int, int]],
) -> None:
    pair = (i, j) if i < j else (j, i)
    if pair in compared:
        return
    compared.add(pair)
    score = pair_score(rows[i], rows[j])
    if score > 0:
        union.union(i, j)
        best_score[i] = max(best_score[i], score)
        best_score[j] = max(best_score[j], score)


def _compare_block(
    members: list[int],
    rows: list[Comparable],
    union: _UnionFind,
    best_score: list[float],
    compared: set[tuple[int, int]],
) -> bool:
    """Compare the records of one block; False when it was too large to compare."""
    # Records identical after normalization: link each to the first (linear, any size).
    first_of: dict[_Signature, int] = {}
    distinct: list[int] = []
    for i in members:
        key = _signature(rows[i])
        if key in first_of:
            _link(first_of[key], i, rows, union, best_score, compared)
        else:
            first_of[key] = i
            distinct.append(i)
    if len(distinct) <= MAX_BLOCK:
        for position, i in enumerate(distinct):
            for j in distinct[position + 1 :]:
                _link(i, j, rows, union, best_score, compared)
        return True
    if len(distinct) > MAX_VECTOR_BLOCK:
        return False
    titles = [rows[i].title_norm for i in distinct]
    scores = process.cdist(titles, titles, scorer=fuzz.ratio, score_cutoff=TITLE_MATCH, workers=1)
    for a, b in zip(*scores.nonzero(), strict=True):
        if a < b:
            _link(distinct[a], distinct[b], rows, union, best_score, compared)
    return True


@dataclass
class Deduplication:
    """Clusters of duplicate records, the record kept per cluster, and PRISMA counts."""

    table: pd.DataFrame
    counts: dict[str, int]
    warnings: list[str] = field(default_factory=list)


def deduplicate(records: list[SearchRecord]) -> Deduplication:
    """Cluster duplicate records (see the module docstring)."""
    frame = normalize(records)
    n = len(frame)
    union = _UnionFind(n)
    best_score = [0.0] * n
    by_doi: dict[str, int] = {}
    for position, doi in enumerate(frame["doi_norm"]):
        if doi:
            if doi in by_doi:
                union.union(by_doi[doi], position)
            else:
                by_doi[doi] = position
    rows = comparable_rows(frame)
    compared: set[tuple[int, int]] = set()
    too_large: list[int] = []
    for members in _blocks(frame).values():
        if len(members) >= 2:
            if not _compare_block(members, rows, union, best_score, compared):
                too_large.append(len(members))
    roots = [union.find(i) for i in range(n)]
    frame["cluster"] = roots
    order = frame.assign(has_doi=frame["doi_norm"] != "", title_length=frame["title_norm"].str.len())
    keep_positions = (
        order.sort_values(
            ["cluster", "has_doi", "n_fields", "title_length", "record_id"],
            ascending=[True, False, False, False, True],
        ).drop_duplicates("cluster")["record_id"]
        - 1
    )
    keep = set(keep_positions)
    cluster_ids = {root: index for index, root in enumerate(dict.fromkeys(roots), start=1)}
    kept_of = {roots[p]: p for p in keep}
    scores = []
    for position in range(n):
        if position in keep:
            scores.append(100.0)
        else:
            kept = kept_of[roots[position]]
            scores.append(round(max(pair_score(rows[position], rows[kept]), best_score[position]), 1))
    table = pd.DataFrame(
        {
            "record_id": frame["record_id"],
            "cluster_id": [cluster_ids[r] for r in roots],
            "keep": [p in keep for p in range(n)],
            "score": scores,
            "doi": frame["doi"],
            "title": frame["title"],
            "first_author": frame["first_author"],
            "year": frame["year"].astype("Int64"),
            "journal": frame["journal"],
            "pmid": frame["pmid"],
            "source_format": frame["source"],
            "source_file": frame["source_file"],
        }
    )
    clusters = table.groupby("cluster_id").size()
    counts = {
        "records_identified": n,
        "duplicates_removed": int(n - table["keep"].sum()),
        "records_after_deduplication": int(table["keep"].sum()),
        "clusters_with_duplicates": int((clusters > 1).sum()),
        "pairs_compared": len(compared),
        "blocks_not_compared": len(too_large),
    }
    warnings = (
        [
            f"{len(too_large)} block(s) of records with the same title start or first author and year "
            f"were too large to compare (largest: {max(too_large)} distinct records, limit "
            f"{MAX_VECTOR_BLOCK}); duplicates inside them may remain"
        ]
        if too_large
        else []
    )
    return Deduplication(table, counts, warnings)


def dedupe_file(path: str | Path | list[str | Path], output: str | Path) -> Deduplication:
    """Read one export (or several, one per database), cluster the records, write the CSV
    and ``<output>.prisma.json``; ``source_file`` names the export each record came from."""
    from evmeta.sheets.export import write_csv

    paths = path if isinstance(path, (list, tuple)) else [path]
    result = deduplicate([record for item in paths for record in read_search_export(item)])
    output = Path(output)
    write_csv(result.table, output)
    output.with_suffix(".prisma.json").write_text(
        json.dumps(result.counts, indent=1) + "\n", encoding="utf-8"
    )
    return result
