"""Small-study effects and publication bias: Egger's test, trim-and-fill, PET-PEESE,
cumulative meta-analysis."""
