"""Simulated literature-search records with known duplicate clusters (tests and benchmarks).

Each true publication appears once or several times; copies differ the way database
exports do: DOI present or absent, title case and punctuation, HTML entities, truncated
titles, swapped author order, journal abbreviations. Distinct publications sometimes
share their opening words (series titles), so blocking cannot rely on the title alone.
"""

from __future__ import annotations

import numpy as np

from evmeta.review.dedupe import SearchRecord

WORDS = (
    "mesenchymal stromal stem cell derived extracellular vesicles exosomes attenuate ameliorate protect against "
    "acute kidney injury ischemia reperfusion cerebral stroke myocardial infarction cardiac fibrosis inflammation "
    "apoptosis mice rats model therapy via regulation microRNA pathway signaling macrophage polarization "
    "oxidative stress mitochondrial autophagy angiogenesis neuroprotection functional recovery umbilical cord "
    "bone marrow adipose hypoxia preconditioned engineered delivery targeted systemic intravenous tubular "
    "epithelial endothelial neuronal cardiomyocyte survival remodeling repair regeneration transfer"
).split()
SURNAMES = (
    "zhang wang li liu chen yang huang zhao wu zhou xu sun kim park lee garcia martinez rossi muller schmidt "
    "nakamura tanaka silva santos kowalski novak dubois smith brown taylor nguyen ahmed ivanova johnson "
    "williams jones davis miller wilson moore anderson thomas jackson white harris martin thompson"
).split()


def simulate_records(
    n_publications: int, seed: int = 1, duplicate_rate: float = 0.3
) -> tuple[list[SearchRecord], list[int]]:
    """Records and, per record, the id of the publication it copies (the true cluster)."""
    rng = np.random.default_rng(seed)
    records, truth = [], []
    prefixes = [" ".join(rng.choice(WORDS, size=4)) for _ in range(max(1, n_publications // 40))]
    for publication in range(n_publications):
        words = list(rng.choice(WORDS, size=rng.integers(8, 16)))
        if rng.random() < 0.25:  # a series title: shared opening words, different paper
            words = prefixes[rng.integers(len(prefixes))].split() + words[4:]
        title = " ".join(words).capitalize()
        authors = [
            f"{s.capitalize()}, {chr(65 + rng.integers(26))}."
            for s in rng.choice(SURNAMES, size=rng.integers(2, 7))
        ]
        year = int(rng.integers(2005, 2025))
        doi = f"10.{rng.integers(1000, 9999)}/j.{publication:07d}" if rng.random() < 0.8 else ""
        journal = str(
            rng.choice(
                [
                    "Stem Cell Research & Therapy",
                    "Journal of Extracellular Vesicles",
                    "Theranostics",
                    "Kidney International",
                    "Stroke",
                    "Cardiovascular Research",
                ]
            )
        )
        copies = 1 + (rng.poisson(1.2) + 1 if rng.random() < duplicate_rate else 0)
        for copy in range(copies):
            t, a, d, j = title, list(authors), doi, journal
            if copy > 0:
                if rng.random() < 0.5:
                    d = ""  # DOI missing in this database
                if rng.random() < 0.4:
                    t = t.upper() if rng.random() < 0.5 else t.lower()
                if rng.random() < 0.4:
                    t = t.replace(" ", ", ", 1).replace(" via ", " via: ") + "."
                if rng.random() < 0.2:
                    t = t.replace(" and ", " &amp; ") if " and " in t else t + " &amp; more"
                if rng.random() < 0.25 and len(t) > 70:
                    t = t[: int(len(t) * rng.uniform(0.6, 0.85))]  # truncated title
                if rng.random() < 0.3 and len(a) > 1:
                    a[0], a[1] = a[1], a[0]  # swapped author order
                if rng.random() < 0.3:
                    j = "".join(w[0] for w in j.split() if w[0].isupper())  # abbreviation
                if rng.random() < 0.2:
                    a = [f"{x.split(',')[0]} {x.split(',')[1].strip()[0]}" for x in a]  # 'Smith J' style
            records.append(SearchRecord(title=t, authors=a, year=year, doi=d, journal=j, source="simulated"))
            truth.append(publication)
    order = rng.permutation(len(records))
    return [records[i] for i in order], [truth[i] for i in order]


def pairwise_precision_recall(predicted: list[int], truth: list[int]) -> tuple[float, float]:
    """Precision and recall over pairs of records placed in the same cluster."""
    from collections import Counter
    from math import comb

    both = Counter(zip(predicted, truth, strict=True))
    true_positive = sum(comb(c, 2) for c in both.values())
    predicted_pairs = sum(comb(c, 2) for c in Counter(predicted).values())
    true_pairs = sum(comb(c, 2) for c in Counter(truth).values())
    precision = true_positive / predicted_pairs if predicted_pairs else 1.0
    recall = true_positive / true_pairs if true_pairs else 1.0
    return precision, recall
