"""Shared fixtures: paths to the example workbook and helpers to plant mistakes in copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import openpyxl
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "extraction" / "example.xlsx"
DATA = ROOT / "tests" / "data"


@pytest.fixture
def example_copy(tmp_path: Path) -> Path:
    """A fresh copy of the example workbook that a test may edit."""
    target = tmp_path / "book.xlsx"
    shutil.copy(EXAMPLE, target)
    return target


def header_index(sheet, name: str) -> int:
    """1-based column index of header ``name`` on ``sheet``."""
    for cell in sheet[1]:
        if cell.value == name:
            return cell.column
    raise KeyError(name)


def set_cell(book, sheet: str, row: int, column: str, value, data_type: str | None = None) -> str:
    """Write ``value`` into the named column; returns the Excel column letter."""
    ws = book[sheet]
    cell = ws.cell(row=row, column=header_index(ws, column))
    cell.value = value
    if data_type:
        cell.data_type = data_type
    return cell.column_letter


def edit(path: Path):
    """Open a workbook for editing (caller saves)."""
    return openpyxl.load_workbook(path)


#: Test modules outside the inner-loop tier (``make test-fast``, ``-m fast``): end-to-end
#: runs of the pipeline, CLI, report, figures and LibreOffice, and the hostile-input suites.
#: Every other test (and not in HEAVY) is marked ``fast``; ``make test`` runs them all.
END_TO_END = {
    "test_cli_newcomer",
    "test_project_update",
    "test_digitized",
    "test_figure_forest",
    "test_figure_layout",
    "test_figure_layout_evidence",
    "test_figure_workers",
    "test_hostile_cli",
    "test_hostile_fuzz",
    "test_hostile_review",
    "test_hostile_sheets",
    "test_multiverse",
    "test_wide_import_run",
    "test_ods",
    "test_pipeline",
    "test_plots",
    "test_prisma",
    "test_docs_examples",
    "test_core_only",
    "test_export_r",
    "test_certainty_run",
    "test_report_browser",
    "test_report_results",
    "test_report_level",
    "test_bayes_marginal_nuts",  # compiles the Numba log posterior on a cold cache
    "test_screening",
    "test_template",
    "test_validate",
    "test_forest_layouts_run",
}


#: The slowest tests of the other modules (``--durations`` of the fast tier, 2026-12-03), also
#: left out of the inner loop: ``module::function`` (every parametrization).
HEAVY = {
    "test_batched::test_null_test_batched_equals_unbatched",
    "test_batched::test_null_test_three_level_batched_equals_unbatched",
    "test_bayes::test_one_level_matches_brute_force_grid",
    "test_bayes_quadrature::test_one_level_draws_follow_the_exact_posterior",
    "test_comparisons::test_a_filtered_arm_leaves_its_share_of_the_control_to_the_arms_left",
    "test_malformed_input::test_merged_cells_and_dates_in_numeric_columns",
    "test_models_meta::test_arrays_and_comparisons_inputs",
    "test_models_robustness::test_fuzz_multilevel_ends_with_a_fit_or_model_error",
    "test_bayes::test_recovers_the_example_effects_as_coverage_over_seeds",
    "test_bayes::test_result_surface_and_arviz",
    "test_bayes::test_two_level_matches_dense_brute_force",
    "test_bayes_quadrature::test_exact_path_imports_neither_arviz_pymc_matplotlib_nor_scipy_stats",
    "test_bayes_quadrature::test_grid_refinement_error_is_below_1e_4",
    "test_bayes_quadrature::test_inverse_cdf_sampler_is_exact_where_node_jitter_is_not",
    "test_bayes_quadrature::test_two_level_draws_follow_the_exact_marginals",
    "test_bias_averaging::test_bias_panel_draws_the_results",
    "test_bias_averaging::test_ensemble_probabilities_and_inclusion_bayes_factors",
    "test_bias_averaging::test_every_ensemble_marginal_likelihood_matches_brute_force",
    "test_bias_averaging::test_normal_marginal_matches_brute_force",
    "test_bias_averaging::test_preclinical_prior_is_documented_and_used",
    "test_bias_averaging::test_preclinical_prior_marginal_matches_brute_force",
    "test_bias_averaging::test_selection_marginal_matches_brute_force",
    "test_bias_averaging::test_strong_selection_is_detected",
    "test_comparisons::test_every_outcome_row_is_used_or_excluded",
    "test_comparisons::test_harmonize_cli",
    "test_comparisons::test_timepoint_rules",
    "test_covariance::test_coverage_of_multilevel_model_with_V",
    "test_covariance::test_keep_on_the_example_workbook",
    "test_dedupe::test_precision_and_recall_on_5000_simulated_records",
    "test_dose_schedules::test_comparisons_carry_the_cumulative_columns",
    "test_dose_schedules::test_empty_schedule_cells_are_filled_from_dose_text",
    "test_dose_schedules::test_schedule_that_disagrees_with_dose_text_is_an_error_on_the_cell",
    "test_dose_text::test_fuzz_any_text_gives_a_dose_or_a_dose_error_quickly",
    "test_dose_text::test_fuzz_dose_like_text_gives_a_dose_or_a_dose_error_quickly",
    "test_malformed_input::test_micro_sign_spellings_in_dose_units",
    "test_malformed_input::test_random_bytes_as_csv",
    "test_malformed_input::test_random_cell_values_in_csv",
    "test_malformed_input::test_semicolon_and_tab_delimiters_are_read_with_a_note",
    "test_malformed_input::test_windows_1252_and_utf16_csv",
    "test_models_errors::test_every_error_raised_on_purpose_is_an_evmeta_error",
    "test_reconcile::test_finds_exactly_the_planted_disagreements",
    "test_reconcile::test_kappa_matches_a_hand_calculation",
    "test_reconcile::test_workbooks_and_apply",
    "test_validate::test_cli_reports_planted_mistakes",
}


def pytest_collection_modifyitems(config, items):
    """Mark every test outside :data:`END_TO_END` and :data:`HEAVY` as ``fast``."""
    for item in items:
        if item.module is None:
            continue
        module = item.module.__name__.rsplit(".", 1)[-1]
        name = getattr(item, "originalname", item.name)
        if module not in END_TO_END and f"{module}::{name}" not in HEAVY:
            item.add_marker(pytest.mark.fast)
