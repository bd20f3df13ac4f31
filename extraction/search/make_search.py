"""Write the bundled example search exports and the screening decisions that go with them.

The records are invented (DOIs under the unused prefix 10.9999) and tied to the simulated
example workbook: every study of its ``studies`` sheet (read from extraction/example.xlsx:
first_author, year, title, doi, journal; today 68 studies, 10.9999/evmeta.example.001-068)
is found by the search, one of them (ZHANG2020, the first row) has a second report, and 25
further records are excluded along the way.

Which database finds study number i (its row in the studies sheet, counted from 1):

* PubMed: i <= 30, and every study from i = 41 on;
* Embase: 10 <= i <= 40, and the even i from 41 on;
* Scopus: i <= 5, 35 <= i <= 39, and the multiples of 5 from 41 on.

So every study is found at least once, whatever the workbook holds. Besides the studies,
PubMed finds the second report of ZHANG2020, full-text exclusions F1-F6, unretrievable N1
and off-topic T1-T10; Embase finds F4-F8, N2 and T8-T15; Scopus finds T1-T3 (T1 without a
DOI, matched by title and author). T15 is retracted and deleted from the screening log.

Hand count of what the PRISMA 2020 flow diagram must show for the 68 studies of today's
workbook (checked by tests/test_prisma.py); studies 41-68 are 28 studies, 14 of them even,
and 45, 50, 55, 60, 65 are the 5 multiples of 5 among them:

    PubMed: 30 + 28 studies + 1 second report + 6 (F1-F6) + 1 (N1) + 10 (T1-T10) = 76
    Embase: 31 + 14 studies + 5 (F4-F8) + 1 (N2) + 8 (T8-T15)                     = 59
    Scopus: 10 + 5 studies + 3 (T1-T3)                                             = 18
    76 + 59 + 18 = 153 records identified
    unique works: 68 studies + 1 second report + 8 F + 2 N + 15 T = 94,
        so 153 - 94 = 59 duplicates removed; counted the other way, one per extra copy:
        studies 10-30 in PubMed and Embase 21, studies 1-5 and 35-39 also in Scopus 10,
        F4-F6 3, T8-T10 3, T1-T3 3 (= 40, the count before the extension), the 14 even
        studies from 41 on also in Embase, the 5 multiples of 5 from 41 on also in Scopus
        (50 and 60 so found three times): 40 + 14 + 5 = 59;
    1 record (T15, retracted) removed before screening, so 93 records screened;
    14 excluded at title/abstract (T1-T14); 93 - 14 = 79 reports sought (68 + 1 + 8 + 2),
        2 not retrieved (N1, N2), 77 assessed;
    8 excluded at full text (not_in_vivo 3, not_msc_ev 2, no_control 1,
        wrong_publication_type 2);
    68 studies included, from 69 reports (77 - 8).

Files written here: the three exports; ``screening_decisions.csv`` (what the two reviewers
decided, keyed by DOI); and, through evmeta itself, ``deduplicated.csv`` (``evmeta dedupe``)
and ``screening.xlsx`` (``evmeta screen-sheet``, then filled from the decisions: the filled
screening fixture). Run ``python extraction/search/make_search.py`` to rewrite them
(deterministic) after the example workbook changes, then update the hand count above and in
tests/test_prisma.py; tests/test_prisma.py checks that the committed files are current.
"""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl

HERE = Path(__file__).parent
EXAMPLE = HERE.parent / "example.xlsx"
#: Columns of the studies sheet a search record is made from.
STUDY_COLUMNS = ("first_author", "year", "title", "doi", "journal")
FT_REASONS = ["not_in_vivo"] * 3 + ["not_msc_ev"] * 2 + ["no_control"] + ["wrong_publication_type"] * 2
FT_TITLES = [
    "MSC-derived exosomes reduce apoptosis of tubular epithelial cells in vitro",
    "Extracellular vesicles from adipose MSCs promote angiogenesis in endothelial cell culture",
    "Proteomic profile of umbilical cord MSC vesicles and their effect on cardiomyocytes in vitro",
    "Bone marrow MSC transplantation improves renal function after ischemia in rats",
    "Conditioned medium of MSCs protects the brain after experimental stroke",
    "Single-arm study of MSC-EV dosing in a porcine infarct model",
    "Extracellular vesicles in regenerative medicine: a narrative review",
    "MSC-EVs for stroke: conference abstract",
]
TA_TITLES = [
    "Platelet-rich plasma injections for knee osteoarthritis",
    "Exosomal microRNA biomarkers in colorectal cancer",
    "Deep learning segmentation of cardiac MRI",
    "Hepatocyte transplantation in liver failure: a cohort study",
    "Tumour-derived vesicles and immune evasion in melanoma",
    "Dietary sodium and blood pressure in adults",
    "Statin therapy after myocardial infarction: registry data",
    "Milk-derived extracellular vesicles as drug carriers",
    "Neural stem cells and spinal cord injury in primates",
    "Plant-derived nanovesicles for oral delivery",
    "Cost-effectiveness of thrombectomy in stroke",
    "Bacterial outer membrane vesicles as vaccines",
    "Gene therapy for inherited retinal dystrophies",
    "Air pollution and acute kidney injury hospital admissions",
    "Retracted: exosomes cure all ischemic injuries in mice",
]


def read_studies(workbook: Path = EXAMPLE) -> list[dict]:
    """The studies sheet of the example workbook, one dict per study (STUDY_COLUMNS), in order.

    Raises ValueError when a study lacks an author, a year, a title or a DOI under 10.9999
    (a search record is made from each, and the invented records must never use a real DOI).
    """
    book = openpyxl.load_workbook(workbook, read_only=True)
    try:
        rows = list(book["studies"].iter_rows(values_only=True))
    finally:
        book.close()
    header = [str(name).strip() if name is not None else "" for name in rows[0]]
    missing = [c for c in STUDY_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{workbook.name} studies sheet: no column {', '.join(missing)}")
    studies = []
    for number, row in enumerate(rows[1:], start=2):
        if all(v is None for v in row):
            continue
        study = {c: row[header.index(c)] for c in STUDY_COLUMNS}
        if not (study["first_author"] and study["year"] and study["title"]):
            raise ValueError(f"{workbook.name} studies!{number}: first_author, year and title are needed")
        if not str(study["doi"] or "").startswith("10.9999/"):
            raise ValueError(f"{workbook.name} studies!{number}: doi {study['doi']!r} is not under 10.9999/")
        studies.append(study)
    return studies


def _works(studies: list[dict]) -> dict[str, dict]:
    works = {}
    for i, study in enumerate(studies, start=1):
        works[f"S{i}"] = {
            "title": str(study["title"]), "authors": [f"{study['first_author']}, A", "Evans, B"],
            "year": int(study["year"]), "doi": str(study["doi"]),
            "journal": study["journal"] or "Stem Cell Research & Therapy", "ta": "include", "ft": "include",
        }  # fmt: skip
    # The second report (a follow-up) of the first study, ZHANG2020 today.
    works["R41"] = {
        "title": "Long-term renal outcomes after MSC extracellular vesicle treatment of AKI in mice: follow-up report",
        "authors": works["S1"]["authors"], "year": works["S1"]["year"] + 1,
        "doi": "10.9999/evmeta.report.041", "journal": "Kidney International", "ta": "include", "ft": "include",
    }  # fmt: skip
    for i, (title, reason) in enumerate(zip(FT_TITLES, FT_REASONS, strict=True), start=1):
        works[f"F{i}"] = {
            "title": title, "authors": [f"Fulltext{i}, C"], "year": 2018 + i % 5,
            "doi": f"10.9999/evmeta.fulltext.{i:03d}", "journal": "Journal of Extracellular Vesicles",
            "ta": "include", "ft": "exclude", "reason": reason,
        }  # fmt: skip
    for i in (1, 2):
        works[f"N{i}"] = {
            "title": f"Vesicles from MSCs in a hamster model of lung injury, part {i}",
            "authors": [f"Missing{i}, D"], "year": 2014, "doi": f"10.9999/evmeta.unavailable.{i:03d}",
            "journal": "Obscure Regional Journal", "ta": "include", "ft": "not_retrieved",
        }  # fmt: skip
    for i, title in enumerate(TA_TITLES, start=1):
        works[f"T{i}"] = {
            "title": title, "authors": [f"Screened{i}, E"], "year": 2010 + i,
            "doi": f"10.9999/evmeta.title.{i:03d}", "journal": "Various", "ta": "exclude",
        }  # fmt: skip
    works["T15"]["removed_before_screening"] = True
    return works


def databases(n_studies: int) -> dict[str, list[str]]:
    """Keys of the works each database finds (the rule in the module docstring)."""
    later = range(41, n_studies + 1)
    pubmed = [*range(1, min(n_studies, 30) + 1), *later]
    embase = [*range(10, min(n_studies, 40) + 1), *(i for i in later if i % 2 == 0)]
    scopus = [i for i in [*range(1, 6), *range(35, 40)] if i <= n_studies] + [i for i in later if i % 5 == 0]
    return {
        "pubmed": [f"S{i}" for i in pubmed] + ["R41", *(f"F{i}" for i in range(1, 7)), "N1"]
        + [f"T{i}" for i in range(1, 11)],
        "embase": [f"S{i}" for i in embase] + [*(f"F{i}" for i in range(4, 9)), "N2"]
        + [f"T{i}" for i in range(8, 16)],
        "scopus": [f"S{i}" for i in scopus] + ["T1", "T2", "T3"],
    }  # fmt: skip


def _medline(work: dict, pmid: int) -> str:
    lines = [f"PMID- {pmid}", f"TI  - {work['title']}."]
    for author in work["authors"]:
        surname, initials = author.split(", ")
        lines += [f"FAU - {author}", f"AU  - {surname} {initials}"]
    lines += [f"DP  - {work['year']} Mar", f"LID - {work['doi']} [doi]", f"JT  - {work['journal']}"]
    return "\n".join(lines)


def _ris(work: dict) -> str:
    lines = ["TY  - JOUR", f"TI  - {work['title']}"]
    lines += [f"AU  - {a}" for a in work["authors"]]
    lines += [
        f"PY  - {work['year']}",
        f"DO  - https://doi.org/{work['doi']}",
        f"JO  - {work['journal']}",
        "ER  - ",
    ]
    return "\n".join(lines)


def main(workbook: Path = EXAMPLE) -> None:
    studies = read_studies(workbook)
    works = _works(studies)
    found = databases(len(studies))
    (HERE / "pubmed.nbib").write_text(
        "\n\n".join(_medline(works[k], 30000000 + n) for n, k in enumerate(found["pubmed"], start=1)) + "\n",
        encoding="utf-8",
    )
    (HERE / "embase.ris").write_text(
        "\n\n".join(_ris(works[k]) for k in found["embase"]) + "\n", encoding="utf-8"
    )
    with (HERE / "scopus.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Authors", "Title", "Year", "Source title", "DOI"])
        for key in found["scopus"]:
            work = works[key]
            doi = "" if key == "T1" else work["doi"]  # T1 has no DOI here: matched by title and author
            title = work["title"].upper() if key == "T1" else work["title"]
            writer.writerow(
                [
                    "; ".join(a.replace(",", "") for a in work["authors"]),
                    title,
                    work["year"],
                    work["journal"],
                    doi,
                ]
            )
    with (HERE / "screening_decisions.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["doi", "ta_reviewer_1", "ta_reviewer_2", "ta_decision", "ft_reviewer_1", "ft_reviewer_2",
                         "ft_decision", "exclusion_reason", "final_decision", "removed_before_screening"])  # fmt: skip
        for n, work in enumerate(works.values()):
            ta, ft = work["ta"], work.get("ft")
            # Reviewer 2 disagrees on a few records, as real screeners do (consensus decides).
            ta_2 = ("exclude" if ta == "include" else "unsure") if n % 9 == 4 else ta
            ft_2 = ("exclude" if ft == "include" else "include") if ft and n % 11 == 3 else ft
            final = "include" if ft == "include" else "exclude"
            writer.writerow([work["doi"], ta, ta_2, ta, ft or "", ft_2 or "", ft or "", work.get("reason", ""),
                             final, "yes" if work.get("removed_before_screening") else ""])  # fmt: skip


def fill_screening(
    sheet_path: Path, output: Path, decisions: Path = HERE / "screening_decisions.csv"
) -> Path:
    """Fill a screening workbook from the decisions (keyed by DOI), as the reviewers would;
    rows marked removed_before_screening are deleted, as a reviewer deletes a retracted record."""
    by_doi = {r["doi"]: r for r in csv.DictReader(decisions.read_text(encoding="utf-8").splitlines())}
    book = openpyxl.load_workbook(sheet_path)
    sheet = book["screening"]
    header = [c.value for c in sheet[1]]
    removed = []
    for row in range(2, sheet.max_row + 1):
        decision = by_doi[sheet.cell(row, header.index("doi") + 1).value]
        if decision["removed_before_screening"] == "yes":
            removed.append(row)
            continue
        for name, value in decision.items():
            if name in header and name != "doi" and value:
                sheet.cell(row, header.index(name) + 1, value)
    for row in reversed(removed):
        sheet.delete_rows(row)
    book.save(output)
    return output


def write_review_files(folder: Path = HERE) -> None:
    """deduplicated.csv and the filled screening.xlsx, made by evmeta from the exports."""
    from evmeta.review.dedupe import dedupe_file
    from evmeta.review.screening import write_screening_sheet

    dedupe_file([HERE / "pubmed.nbib", HERE / "embase.ris", HERE / "scopus.csv"], folder / "deduplicated.csv")
    blank = write_screening_sheet(folder / "deduplicated.csv", folder / "screening.blank.xlsx")
    fill_screening(blank, folder / "screening.xlsx")
    blank.unlink()


if __name__ == "__main__":
    main()
    write_review_files()
