"""The bundled example, shipped as package data so that ``evmeta demo`` works anywhere.

``evmeta/data/example/`` holds the simulated example workbook, its true parameters and an
analysis spec whose paths point beside it (a copy of ``analyses/example.toml``; a test keeps
the two in step).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from evmeta.errors import PathError

EXAMPLE_FILES = ("example.xlsx", "example_truth.json", "example.toml")


def copy_example(folder: str | Path) -> Path:
    """Copy the example's workbook, truth and spec into ``folder``; return the spec's path.

    Raises
    ------
    PathError
        When ``folder`` already holds a file of the same name with other content (a user's
        edited copy is never overwritten).
    """
    folder = Path(folder)
    source = resources.files("evmeta.data").joinpath("example")
    payload = {name: source.joinpath(name).read_bytes() for name in EXAMPLE_FILES}
    for name, data in payload.items():
        target = folder / name
        if target.exists() and (not target.is_file() or target.read_bytes() != data):
            raise PathError(
                f"{target} exists and differs from the bundled example; choose another folder with -o"
            )
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in payload.items():
        (folder / name).write_bytes(data)
    return folder / "example.toml"
