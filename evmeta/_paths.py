"""Safe file handling shared by every command: what may be read, and what may be written.

Inputs must be regular files (a FIFO, a character device such as ``/dev/zero`` or a folder
named like a workbook would block a reader or never end) and are read with a byte cap.
Outputs never replace one of the command's inputs, replace another existing file only
with ``force=True`` (the CLI's ``--force``), and must be writable before any work starts.
Every refusal is a :class:`evmeta.errors.PathError` whose message names the path.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from evmeta.errors import PathError

#: Largest input file read, in bytes (an extraction workbook is typically < 5 MB).
MAX_INPUT_BYTES = 50 * 1024 * 1024


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def require_regular_file(path: str | Path, *, what: str = "input", max_bytes: int = MAX_INPUT_BYTES) -> Path:
    """Return ``path`` if it is a regular file of at most ``max_bytes`` bytes.

    Symbolic links are followed, so a link to ``/dev/zero`` is refused as a device.
    ``os.stat`` never blocks, unlike opening a FIFO.

    Raises
    ------
    PathError
        When the path does not exist, is not a regular file, or is too large.
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise PathError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise PathError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise PathError(f"{what} {path} is {_kind(info.st_mode)}; expected a regular file")
    if info.st_size > max_bytes:
        raise PathError(
            f"{what} {path.name} is {info.st_size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB"
        )
    return path


def read_bytes_capped(path: str | Path, *, what: str = "input", max_bytes: int = MAX_INPUT_BYTES) -> bytes:
    """Bytes of a regular file, refusing to read more than ``max_bytes`` (the file may grow)."""
    path = require_regular_file(path, what=what, max_bytes=max_bytes)
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise PathError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise PathError(f"{what} {path.name} is over the {max_bytes / 1e6:.0f} MB limit")
    return data


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def check_output(
    path: str | Path,
    *,
    inputs: Iterable[str | Path] = (),
    force: bool = False,
    what: str = "output",
    folder: bool = False,
) -> Path:
    """Check that ``path`` may be written; return it.

    Parameters
    ----------
    path : str or Path
        The file (or, with ``folder=True``, the folder) a command will write.
    inputs : iterable of paths
        The command's inputs: the output may never be one of them (nor, for a CSV folder
        input, a file inside it), even with ``force``.
    force : bool
        Allow replacing an existing file (the CLI's ``--force``).
    what : str
        How the message names the path (``"output"``, ``"-o"``).
    folder : bool
        The output is a folder: an existing folder is fine, an existing file is not.

    Raises
    ------
    PathError
        When the output is an input, exists without ``force``, is the wrong kind, or its
        folder cannot be created or written.
    """
    path = Path(path)
    for source in inputs:
        source = Path(source)
        if _same_file(path, source) or path.resolve() == source.resolve():
            raise PathError(f"{what} {path} is one of this command's inputs; write the result elsewhere")
        if source.is_dir() and _inside(path, source) and not folder:
            raise PathError(f"{what} {path} is inside the input folder {source}; write it elsewhere")
    if folder:
        if path.exists() and not path.is_dir():
            raise PathError(f"{what} {path} is an existing file; expected a folder")
    elif path.is_dir():
        raise PathError(f"{what} {path} is a folder; expected a file name")
    elif path.exists() or path.is_symlink():
        if not force:
            raise PathError(f"{what} {path} already exists; use --force to replace it")
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise PathError(f"{what} {path} is not a regular file; it cannot be replaced")
    _check_writable_parent(path if folder and path.exists() else path.parent, what, path)
    return path


def _check_writable_parent(parent: Path, what: str, path: Path) -> None:
    """The nearest existing ancestor must be a writable folder (``-o /proc/x/c.csv`` is not)."""
    probe = parent
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise PathError(f"{what} {path}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK) or _read_only_filesystem(probe):
        raise PathError(f"{what} {path}: the folder {probe} is not writable")


def _read_only_filesystem(folder: Path) -> bool:
    """True for read-only or pseudo file systems (``/proc``, ``/sys``), even for root."""
    try:
        info = os.statvfs(folder)
    except OSError:
        return True
    if info.f_flag & os.ST_RDONLY:
        return True
    resolved = folder.resolve()
    return any(resolved == Path(p) or Path(p) in resolved.parents for p in ("/proc", "/sys"))


def is_within(path: str | Path, folder: str | Path) -> bool:
    """True when ``path`` (resolved, symlinks followed) lies inside ``folder``."""
    return _inside(Path(path), Path(folder))


def check_outputs(
    outputs: Iterable[str | Path], *, inputs: Iterable[str | Path] = (), force: bool = False
) -> list[Path]:
    """:func:`check_output` for every file a command writes, side files included, and no two
    of them the same file (``harmonize -o exclusions.csv`` would write both over one)."""
    inputs = list(inputs)
    checked: dict[Path, Path] = {}
    for output in outputs:
        path = check_output(output, inputs=inputs, force=force)
        key = path.resolve()
        if key in checked:
            raise PathError(
                f"output {path} is also another file this command writes ({checked[key]}); "
                "choose another name"
            )
        checked[key] = path
    return list(checked.values())
