"""Models: frequentist (tau^2 estimators, meta-regression, multilevel, bias) and Bayesian."""
