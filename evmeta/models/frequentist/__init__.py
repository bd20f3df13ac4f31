"""Frequentist models: tau^2 estimators, random-effects meta-analysis and meta-regression,
subgroups, multilevel models and cluster-robust (CR2) inference."""
