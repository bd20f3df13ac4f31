"""The review project: a folder of workbooks with a database behind it (SQLite or PostgreSQL).

Storage only: search exports and their de-duplicated records (:mod:`.searches`), screening
decisions (:mod:`.screening`), extraction versions with cell history (:mod:`.extraction`),
analysis specs and runs (:mod:`.runs`), the project's state and log (:mod:`.history`). The
refit of the analyses and the what-changed report sit at the analysis layer
(:mod:`evmeta.analysis.living`). Nothing here imports SQLAlchemy until a function runs.
"""
