"""The package version (one place, imported by the package and by the HTTP User-Agent)."""

__version__ = "0.1.0"
