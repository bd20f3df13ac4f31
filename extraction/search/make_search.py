"""Write the bundled example search exports and the screening decisions that go with them.

The records are invented (DOIs under the unused prefix 10.9999) and tied to the simulated
example workbook: its 40 studies (10.9999/evmeta.example.001-040) are found by the search,
one of them (ZHANG2020) has a second report, and 25 further records are excluded along the
way. Hand count of what the PRISMA 2020 flow diagram must show (checked by
tests/test_prisma.py):

    PubMed 48 + Embase 45 + Scopus 13 = 106 records identified
    66 unique works -> 40 duplicates removed; 1 record (retracted) removed before screening
    65 screened, 14 excluded at title/abstract; 51 reports sought, 2 not retrieved
    49 assessed, 8 excluded (not_in_vivo 3, not_msc_ev 2, no_control 1, wrong_publication_type 2)
    40 studies included, from 41 reports

Files written here: the three exports; ``screening_decisions.csv`` (what the two reviewers
decided, keyed by DOI); and, through evmeta itself, ``deduplicated.csv`` (``evmeta dedupe``)
and ``screening.xlsx`` (``evmeta screen-sheet``, then filled from the decisions: the filled
screening fixture). Run ``python extraction/search/make_search.py`` to rewrite them
(deterministic); tests/test_prisma.py checks that the committed files are current.
"""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl

HERE = Path(__file__).parent
EXAMPLE_AUTHORS = (
    "Zhang Wang Li Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Kim Park Lee Garcia Martinez Rossi Müller Schmidt "
    "Nakamura Tanaka Silva Santos Kowalski Novak Dubois Smith Brown Taylor Nguyen Ahmed Ivanova Zhang Wang Li "
    "Liu Chen Yang Huang"
).split()
EXAMPLE_YEARS = [2020, 2018, 2019, 2019, 2016, 2015, 2017, 2016, 2020, 2022, 2019, 2020, 2019, 2017, 2015,
                 2017, 2024, 2024, 2020, 2019, 2019, 2022, 2018, 2024, 2020, 2024, 2024, 2017, 2016, 2019,
                 2019, 2015, 2021, 2020, 2022, 2019, 2021, 2017, 2021, 2023]  # fmt: skip
MODELS = ["ischemia/reperfusion AKI", "MCAO", "LAD ligation"]
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


def _works() -> dict[str, dict]:
    works = {}
    for i, (author, year) in enumerate(zip(EXAMPLE_AUTHORS, EXAMPLE_YEARS, strict=True), start=1):
        species = "mouse" if i % 2 else "rat"
        works[f"S{i}"] = {
            "title": f"Mesenchymal stromal cell-derived extracellular vesicles in a {species} model of {MODELS[(i - 1) % 3]}",
            "authors": [f"{author}, A", "Evans, B"],
            "year": year,
            "doi": f"10.9999/evmeta.example.{i:03d}",
            "journal": "Stem Cell Research & Therapy",
            "ta": "include", "ft": "include",
        }  # fmt: skip
    works["R41"] = {
        "title": "Long-term renal outcomes after MSC extracellular vesicle treatment of AKI in mice: follow-up report",
        "authors": ["Zhang, A", "Evans, B"], "year": 2021, "doi": "10.9999/evmeta.report.041",
        "journal": "Kidney International", "ta": "include", "ft": "include",
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


PUBMED = (
    [f"S{i}" for i in range(1, 31)]
    + ["R41"]
    + [f"F{i}" for i in range(1, 7)]
    + ["N1"]
    + [f"T{i}" for i in range(1, 11)]
)
EMBASE = (
    [f"S{i}" for i in range(10, 41)]
    + [f"F{i}" for i in range(4, 9)]
    + ["N2"]
    + [f"T{i}" for i in range(8, 16)]
)
SCOPUS = [f"S{i}" for i in (1, 2, 3, 4, 5, 35, 36, 37, 38, 39)] + ["T1", "T2", "T3"]  # fmt: skip


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


def main() -> None:
    works = _works()
    (HERE / "pubmed.nbib").write_text(
        "\n\n".join(_medline(works[k], 30000000 + n) for n, k in enumerate(PUBMED, start=1)) + "\n",
        encoding="utf-8",
    )
    (HERE / "embase.ris").write_text("\n\n".join(_ris(works[k]) for k in EMBASE) + "\n", encoding="utf-8")
    with (HERE / "scopus.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Authors", "Title", "Year", "Source title", "DOI"])
        for key in SCOPUS:
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
