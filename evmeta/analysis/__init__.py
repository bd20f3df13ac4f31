"""Analyses as data: the TOML analysis spec, the pipeline that runs it stage by stage, and
many-specification runs built on it."""
