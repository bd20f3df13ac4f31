"""The grammar of a printed dose: ``tokens`` (numbers with lost superscripts, units,
denominators), ``schedule`` (how often and how long) and ``text`` (the reading of a whole
dose cell, and its refusals). It sits in the schema layer so that validation reads every
``dose_text`` at its cell; :mod:`evmeta.harmonize.doses` converts a reading to canonical
units (the public :func:`evmeta.parse_dose`).
"""
