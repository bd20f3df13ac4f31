"""The run's PRISMA 2020 stage: the flow diagram and its counts from the files the spec's
``[prisma]`` section names, and their fingerprints for ``provenance.json``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for the annotations only
    from evmeta.analysis.run_state import RunState
    from evmeta.analysis.spec import AnalysisSpec


def prisma(run: RunState) -> None:
    """PRISMA 2020 flow diagram and counts, when the spec's ``[prisma]`` section names the files."""
    from evmeta.errors import SpecError
    from evmeta.plots import save_figure
    from evmeta.plots.prisma import prisma_diagram
    from evmeta.review.prisma import prisma_counts

    section = run.spec.prisma
    if not section.enabled:
        return
    dedupe, screening = section.dedupe, section.screening
    if dedupe is None or screening is None or not section.search:
        missing = [k for k, v in (("dedupe", dedupe), ("screening", screening)) if v is None]
        raise SpecError(
            f"[prisma] needs search, dedupe and screening; missing: {', '.join(missing or ['search'])}"
        )
    extraction = run.spec.resolve(section.extraction) if section.extraction else run.spec.extraction_path
    counts = prisma_counts(
        [run.spec.resolve(p) for p in section.search],
        run.spec.resolve(dedupe),
        run.spec.resolve(screening),
        extraction,
        registers=[run.spec.resolve(p) for p in section.registers],
    )
    run.notes.extend(f"PRISMA: {note}" for note in counts.notes)
    run.tables = run.tables.with_(prisma=counts.to_frame())
    figure = prisma_diagram(counts, width=run.spec.figures.width)
    run.figures["prisma"] = save_figure(figure, run.output / "prisma", tuple(run.spec.figures.formats))


def prisma_inputs(spec: AnalysisSpec) -> dict[str, str]:
    """SHA-256 of the files the PRISMA diagram was counted from (for provenance.json)."""
    from evmeta.sheets.raw import file_sha256

    section = spec.prisma
    if not section.enabled:
        return {}
    paths = [*section.search, *section.registers, section.dedupe, section.screening, section.extraction]
    resolved = [spec.resolve(p) for p in paths if p]
    return {str(path): file_sha256(path) for path in resolved if path.exists()}
