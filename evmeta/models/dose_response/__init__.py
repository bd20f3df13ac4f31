"""Dose-response meta-analysis on harmonized doses: the natural spline basis (``spline``),
the rows that enter (``selection``), the Emax curve (``emax``), the effective dose
(``effective_dose``), within- vs between-study dose information (``within_between``), the
result (``result``) and the one-stage fit (``fit``)."""
