"""What every model shares: the design matrix, the nesting structure of random effects,
inference tables and provenance."""
