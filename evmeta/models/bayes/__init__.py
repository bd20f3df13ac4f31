"""Bayesian hierarchical models: exact quadrature, NUTS (the only PyMC import) and results."""
