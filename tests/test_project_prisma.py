"""The PRISMA 2020 flow diagram for updated reviews: every box of the template, every number
from the counts, at both journal widths."""

from __future__ import annotations

import pytest

from evmeta.project.prisma import UpdatedPrisma
from evmeta.review.prisma import PrismaCounts


def _counts() -> UpdatedPrisma:
    new = PrismaCounts(
        databases={"PubMed": 9, "Embase": 4}, duplicates_removed=6, removed_other=0, screened=7,
        excluded_screening=3, sought=4, not_retrieved=1, assessed=3,
        excluded_reasons={"not_in_vivo": 1}, studies_included=2, reports_included=2,
    )  # fmt: skip
    return UpdatedPrisma(new, previous_studies=68, previous_reports=69, total_studies=70, total_reports=71)


@pytest.mark.parametrize("width", ["double", "single"])
def test_every_box_of_the_updated_template(width):
    import matplotlib.pyplot as plt

    from evmeta.plots.prisma_update import prisma_update_diagram

    figure = prisma_update_diagram(_counts(), width=width)
    try:
        boxes = [p for p in figure.axes[0].patches if p.get_gid() == "box"]
        # 6 boxes down the middle, 4 beside them, the previous-studies box, 2 headers, 3 phases.
        assert len(boxes) == 16
        text = " ".join(t.get_text() for t in figure.axes[0].texts).replace("\u00a0", " ").replace("\n", " ")
        for phrase in ["Studies included in previous version of review (n = 68)", "(n = 69)",
                       "Total studies included in review (n = 70)", "(n = 71)", "New studies included in review",
                       "Databases (n = 13)", "Duplicate records removed (n = 6)", "Reports not retrieved (n = 1)",
                       "Previous studies", "Identification of new studies via databases and registers"]:  # fmt: skip
            assert " ".join(phrase.split()) in " ".join(text.split()), phrase
        renderer = figure.canvas.get_renderer()
        inside = figure.bbox
        for artist in figure.axes[0].texts:  # nothing spills out of the figure
            extent = artist.get_window_extent(renderer)
            assert extent.x0 >= inside.x0 - 1 and extent.x1 <= inside.x1 + 1
    finally:
        plt.close(figure)


def test_counts_table_has_the_previous_and_total_boxes():
    frame = _counts().to_frame()
    previous = frame[frame["stage"] == "previous"].set_index("item")["n"]
    total = frame[frame["box"] == "total studies included in review"].set_index("item")["n"]
    assert (previous["studies"], previous["reports"], total["studies"], total["reports"]) == (68, 69, 70, 71)
