"""The HTML report: one self-contained file with the methods, results, figures and provenance."""
